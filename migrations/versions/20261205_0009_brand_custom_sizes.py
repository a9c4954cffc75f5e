"""Brands say whether custom sizes are allowed: ``brands.allow_custom_sizes`` (false for every brand).

Generation takes a size from the brand's presets; a ``WIDTHxHEIGHT`` outside them is accepted only when an
admin allows custom sizes for that brand (the Brands tab, ``allow_custom_sizes`` in brand.toml), or when it
is the size of an image of the brand the user may see (a remix of it). Existing brands start with custom
sizes off.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 05:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("brands", recreate="never") as batch:  # no rebuild: the brand's rows stay
        batch.add_column(
            sa.Column("allow_custom_sizes", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("brands", recreate="never") as batch:  # no rebuild: the brand's rows stay
        batch.drop_column("allow_custom_sizes")
