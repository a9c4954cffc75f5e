"""Brands follow the studio's model unless pinned; LoRA versions record their model's family.

* ``brands.base_model`` becomes nullable: NULL = the studio default (follows STUDIO_BASE_MODEL). Before, the
  setting was copied into every row; the only way to choose a model was a ``base_model`` key in the brand's
  ``brand.toml``. So a row stays pinned only when its source file (``source_path``/brand.toml) still names
  one; every other row becomes "default". (Offline SQL cannot read the files: there every row becomes
  default; ``studio brands sync`` pins them again.)
* ``lora_versions.family`` (sd1, sd2, sdxl, sd3, flux; NULL = unknown, looked up from ``base_model``).

SQLite cannot drop NOT NULL in place, and a batch rebuild of ``brands`` would cascade-delete its children
(see env.py), so the column is swapped with plain ALTERs that SQLite ≥ 3.35 and PostgreSQL run in place:
add ``base_model_pin``, copy the pins, drop ``base_model``, rename. The downgrade fills NULL with the studio
default (the migrating settings' base model) and restores NOT NULL where the database can do it in place
(not on SQLite, where the column stays nullable).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 01:00:00.000000
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import context, op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_brands = sa.table(
    "brands",
    sa.column("id", sa.Integer),
    sa.column("base_model", sa.String),
    sa.column("base_model_pin", sa.String),
    sa.column("source_path", sa.Text),
)


def _file_pins(source_path: str | None) -> bool:
    """Whether the brand's source brand.toml names a model (anything but "default")."""
    if not source_path:
        return False
    try:
        data = tomllib.loads((Path(source_path) / "brand.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    value = data.get("base_model")
    return isinstance(value, str) and value.strip().lower() not in ("", "default")


def _studio_default() -> str:
    configured = context.config.attributes.get("studio_base_model")
    if configured:
        return str(configured)
    from studio.config import Settings

    return Settings.from_env().base_model


def upgrade() -> None:
    with op.batch_alter_table("lora_versions", recreate="never") as batch:
        batch.add_column(sa.Column("family", sa.String(length=16), nullable=True))
    with op.batch_alter_table("brands", recreate="never") as batch:
        batch.add_column(sa.Column("base_model_pin", sa.String(length=300), nullable=True))
    if not context.is_offline_mode():
        rows = op.get_bind().execute(sa.select(_brands.c.id, _brands.c.source_path)).all()
        for brand_id, source_path in rows:
            if _file_pins(source_path):
                op.execute(
                    _brands.update()
                    .where(_brands.c.id == brand_id)
                    .values(base_model_pin=_brands.c.base_model)
                )
    with op.batch_alter_table("brands", recreate="never") as batch:
        batch.drop_column("base_model")
    with op.batch_alter_table("brands", recreate="never") as batch:
        batch.alter_column("base_model_pin", new_column_name="base_model")


def downgrade() -> None:
    with op.batch_alter_table("brands", recreate="never") as batch:
        batch.add_column(sa.Column("base_model_old", sa.String(length=300), nullable=True))
    old = sa.table("brands", sa.column("base_model", sa.String), sa.column("base_model_old", sa.String))
    default = sa.literal(_studio_default(), sa.String)
    op.execute(old.update().values(base_model_old=sa.func.coalesce(old.c.base_model, default)))
    with op.batch_alter_table("brands", recreate="never") as batch:
        batch.drop_column("base_model")
    with op.batch_alter_table("brands", recreate="never") as batch:
        batch.alter_column("base_model_old", new_column_name="base_model")
    if op.get_context().dialect.name != "sqlite":
        with op.batch_alter_table("brands", recreate="never") as batch:
            batch.alter_column("base_model", existing_type=sa.String(length=300), nullable=False)
    with op.batch_alter_table("lora_versions", recreate="never") as batch:
        batch.drop_column("family")
