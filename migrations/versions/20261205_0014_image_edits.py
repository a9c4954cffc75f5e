"""Edits and their lineage (issue 19): ``image_edits`` (one row per edited image: parent, kind, strength,
stored source and mask, mask blur, anchor, upscale factor, campaign group) and ``image_regions`` (regions a
reviewer marked, as stored masks). Existing images are untouched: they were made from text.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05 07:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "image_edits",
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("parent_image_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("strength", sa.Float(), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("mask_sha256", sa.String(length=64), nullable=True),
        sa.Column("mask_blur", sa.Integer(), nullable=True),
        sa.Column("anchor", sa.String(length=16), nullable=True),
        sa.Column("scale", sa.Integer(), nullable=True),
        sa.Column("group_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('img2img', 'inpaint', 'expand', 'upscale')", name=op.f("ck_image_edits_kind")
        ),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_image_edits_image_id_images"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["parent_image_id"],
            ["images.id"],
            name=op.f("fk_image_edits_parent_image_id_images"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("image_id", name=op.f("pk_image_edits")),
    )
    op.create_index("ix_image_edits_parent", "image_edits", ["parent_image_id"])
    op.create_index("ix_image_edits_group", "image_edits", ["group_id"])
    op.create_table(
        "image_regions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("image_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("mask_sha256", sa.String(length=64), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["image_id"], ["images.id"], name=op.f("fk_image_regions_image_id_images"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_image_regions_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_image_regions")),
    )
    op.create_index("ix_image_regions_image_created", "image_regions", ["image_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_image_regions_image_created", table_name="image_regions")
    op.drop_table("image_regions")
    op.drop_index("ix_image_edits_group", table_name="image_edits")
    op.drop_index("ix_image_edits_parent", table_name="image_edits")
    op.drop_table("image_edits")
