"""Initial schema: users and roles, brands and members, LoRA adapters/versions, control templates, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 12:23:53.110673
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_events_action"), ["action"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_events_at"), ["at"], unique=False)

    op.create_table(
        "brands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("palette", sa.JSON(), nullable=False),
        sa.Column("palette_threshold", sa.Float(), nullable=True),
        sa.Column("style_template", sa.Text(), nullable=False),
        sa.Column("negative_prompt", sa.Text(), nullable=False),
        sa.Column("banned_terms", sa.JSON(), nullable=False),
        sa.Column("size_presets", sa.JSON(), nullable=False),
        sa.Column("default_size", sa.String(length=64), nullable=True),
        sa.Column("default_cfg", sa.Float(), nullable=False),
        sa.Column("default_steps", sa.Integer(), nullable=False),
        sa.Column("default_sampler", sa.String(length=32), nullable=False),
        sa.Column("base_model", sa.String(length=300), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_brands")),
        sa.UniqueConstraint("slug", name=op.f("uq_brands_slug")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "brand_members",
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_brand_members_brand_id_brands"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_brand_members_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("brand_id", "user_id", name=op.f("pk_brand_members")),
    )
    op.create_table(
        "control_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("preprocessor", sa.String(length=32), nullable=False),
        sa.Column("source_file", sa.Text(), nullable=True),
        sa.Column("source_image_path", sa.Text(), nullable=True),
        sa.Column("source_image_sha256", sa.String(length=64), nullable=True),
        sa.Column("control_image_path", sa.Text(), nullable=True),
        sa.Column("conditioning_scale", sa.Float(), nullable=False),
        sa.Column("guidance_start", sa.Float(), nullable=False),
        sa.Column("guidance_end", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_control_templates_brand_id_brands"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_control_templates")),
        sa.UniqueConstraint("brand_id", "name", name=op.f("uq_control_templates_brand_id_name")),
    )
    with op.batch_alter_table("control_templates", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_control_templates_brand_id"), ["brand_id"], unique=False)

    op.create_table(
        "lora_adapters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("brand_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("trigger_words", sa.JSON(), nullable=False),
        sa.Column("default_weight", sa.Float(), nullable=False),
        sa.Column("source_file", sa.Text(), nullable=True),
        sa.Column("active_version_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('style', 'subject')", name=op.f("ck_lora_adapters_kind")),
        sa.ForeignKeyConstraint(
            ["brand_id"], ["brands.id"], name=op.f("fk_lora_adapters_brand_id_brands"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lora_adapters")),
        sa.UniqueConstraint("brand_id", "name", name=op.f("uq_lora_adapters_brand_id_name")),
    )
    with op.batch_alter_table("lora_adapters", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lora_adapters_brand_id"), ["brand_id"], unique=False)

    op.create_table(
        "user_roles",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.CheckConstraint("role IN ('admin', 'marketer', 'reviewer')", name=op.f("ck_user_roles_role")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_roles_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "role", name=op.f("pk_user_roles")),
    )
    op.create_table(
        "lora_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("adapter_id", sa.Integer(), nullable=False),
        sa.Column("file_path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=True),
        sa.Column("base_model", sa.String(length=300), nullable=False),
        sa.Column("source_job_id", sa.Integer(), nullable=True),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["adapter_id"],
            ["lora_adapters.id"],
            name=op.f("fk_lora_versions_adapter_id_lora_adapters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lora_versions")),
        sa.UniqueConstraint("adapter_id", "sha256", name=op.f("uq_lora_versions_adapter_id_sha256")),
    )
    with op.batch_alter_table("lora_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lora_versions_adapter_id"), ["adapter_id"], unique=False)

    # lora_adapters.active_version_id -> lora_versions: the tables refer to each other, so this key comes last
    # (batch mode rebuilds the still-empty table on SQLite; PostgreSQL gets a plain ALTER TABLE).
    with op.batch_alter_table("lora_adapters", schema=None) as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_lora_adapters_active_version_id_lora_versions"),
            "lora_versions",
            ["active_version_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("lora_adapters", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_lora_adapters_active_version_id_lora_versions"), type_="foreignkey"
        )
    with op.batch_alter_table("lora_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lora_versions_adapter_id"))

    op.drop_table("lora_versions")
    op.drop_table("user_roles")
    with op.batch_alter_table("lora_adapters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lora_adapters_brand_id"))

    op.drop_table("lora_adapters")
    with op.batch_alter_table("control_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_control_templates_brand_id"))

    op.drop_table("control_templates")
    op.drop_table("brand_members")
    op.drop_table("users")
    op.drop_table("brands")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_events_at"))
        batch_op.drop_index(batch_op.f("ix_audit_events_action"))

    op.drop_table("audit_events")
