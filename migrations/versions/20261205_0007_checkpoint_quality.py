"""Training checkpoints keep their quality-gate scores: ``job_checkpoints.quality`` (JSON, NULL = not scored).

The worker scores each checkpoint's images against the brand (palette, prompt adherence, the trigger word's
effect; see ``studio.training.quality``) and writes the scores in the same transaction as the checkpoint's
row, so a checkpoint and its scores are recorded together or not at all. Checkpoints from before stay NULL.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 02:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("job_checkpoints", recreate="never") as batch:
        batch.add_column(sa.Column("quality", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("job_checkpoints", recreate="never") as batch:
        batch.drop_column("quality")
