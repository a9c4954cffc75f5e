"""Layout templates name their ControlNet model: ``control_templates.controlnet_model`` (NULL = the base
model's own / configured ControlNet, as before).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 14:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("control_templates") as batch:
        batch.add_column(sa.Column("controlnet_model", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("control_templates") as batch:
        batch.drop_column("controlnet_model")
