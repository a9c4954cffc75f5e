"""Generations and images: who generated what with which recipe, LoRAs, templates; image files, review
status and palette score, with the indexes the gallery and review queue filter on.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 12:36:59.814646
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "generations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("recipe", sa.JSON(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("final_prompt", sa.Text(), nullable=False),
        sa.Column("negative_prompt", sa.Text(), nullable=False),
        sa.Column("final_negative_prompt", sa.Text(), nullable=False),
        sa.Column("sampler", sa.String(length=32), nullable=False),
        sa.Column("steps", sa.Integer(), nullable=False),
        sa.Column("cfg", sa.Float(), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("batch_size", sa.Integer(), nullable=False),
        sa.Column("base_model", sa.String(length=300), nullable=False),
        sa.Column("base_model_revision", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"], name=op.f("fk_generations_brand_id_brands")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_generations_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generations")),
    )
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.create_index("ix_generations_brand_created", ["brand_id", "created_at"], unique=False)
        batch_op.create_index("ix_generations_user_created", ["user_id", "created_at"], unique=False)

    op.create_table(
        "generation_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("template_id", sa.Integer(), nullable=True),
        sa.Column("template_name", sa.String(length=64), nullable=False),
        sa.Column("control_image_sha256", sa.String(length=64), nullable=False),
        sa.Column("conditioning_scale", sa.Float(), nullable=False),
        sa.Column("guidance_start", sa.Float(), nullable=False),
        sa.Column("guidance_end", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_generation_templates_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["control_templates.id"],
            name=op.f("fk_generation_templates_template_id_control_templates"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generation_templates")),
    )
    with op.batch_alter_table("generation_templates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_generation_templates_generation_id"), ["generation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_generation_templates_template_id"), ["template_id"], unique=False
        )

    op.create_table(
        "images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("file_path", sa.String(length=500), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("pixel_sha256", sa.String(length=64), nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("review_status", sa.String(length=16), nullable=False),
        sa.Column("palette_score", sa.Float(), nullable=True),
        sa.Column("palette_flag", sa.Boolean(), nullable=False),
        sa.Column("palette_misses", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "review_status IN ('pending', 'approved', 'rejected')", name=op.f("ck_images_review_status")
        ),
        sa.ForeignKeyConstraint(["brand_id"], ["brands.id"], name=op.f("fk_images_brand_id_brands")),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_images_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_images_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_images")),
        sa.UniqueConstraint("file_path", name=op.f("uq_images_file_path")),
    )
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.create_index("ix_images_brand_created", ["brand_id", "created_at"], unique=False)
        batch_op.create_index(
            "ix_images_brand_status_created", ["brand_id", "review_status", "created_at"], unique=False
        )
        batch_op.create_index("ix_images_created", ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_images_generation_id"), ["generation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_images_pixel_sha256"), ["pixel_sha256"], unique=False)
        batch_op.create_index(
            "ix_images_status_flag_created", ["review_status", "palette_flag", "created_at"], unique=False
        )
        batch_op.create_index("ix_images_user_created", ["user_id", "created_at"], unique=False)

    op.create_table(
        "generation_loras",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("generation_id", sa.Integer(), nullable=False),
        sa.Column("lora_version_id", sa.Integer(), nullable=True),
        sa.Column("adapter_name", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("weight", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_generation_loras_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lora_version_id"],
            ["lora_versions.id"],
            name=op.f("fk_generation_loras_lora_version_id_lora_versions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_generation_loras")),
    )
    with op.batch_alter_table("generation_loras", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_generation_loras_generation_id"), ["generation_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_generation_loras_lora_version_id"), ["lora_version_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("generation_loras", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_generation_loras_lora_version_id"))
        batch_op.drop_index(batch_op.f("ix_generation_loras_generation_id"))

    op.drop_table("generation_loras")
    with op.batch_alter_table("images", schema=None) as batch_op:
        batch_op.drop_index("ix_images_user_created")
        batch_op.drop_index("ix_images_status_flag_created")
        batch_op.drop_index(batch_op.f("ix_images_pixel_sha256"))
        batch_op.drop_index(batch_op.f("ix_images_generation_id"))
        batch_op.drop_index("ix_images_created")
        batch_op.drop_index("ix_images_brand_status_created")
        batch_op.drop_index("ix_images_brand_created")

    op.drop_table("images")
    with op.batch_alter_table("generation_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_generation_templates_template_id"))
        batch_op.drop_index(batch_op.f("ix_generation_templates_generation_id"))

    op.drop_table("generation_templates")
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_index("ix_generations_user_created")
        batch_op.drop_index("ix_generations_brand_created")

    op.drop_table("generations")
