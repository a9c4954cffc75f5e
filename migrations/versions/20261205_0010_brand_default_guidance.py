"""Brands have a default guidance beyond plain CFG: ``brands.default_guidance`` (JSON, null = plain CFG).

``[defaults.guidance]`` in brand.toml (the fields of ``studio.engine.guidance_settings.Guidance`` that differ
from plain CFG, e.g. ``method = "fdg"``) lands here on ``studio brands sync``; the Generate tab starts from
it. Existing brands keep plain CFG (null).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 05:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("brands", recreate="never") as batch:  # no rebuild: the brand's rows stay
        batch.add_column(sa.Column("default_guidance", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("brands", recreate="never") as batch:  # no rebuild: the brand's rows stay
        batch.drop_column("default_guidance")
