"""Jobs carry their result: ``jobs.result`` (JSON, null until the job ends). A generation job run by a worker
(STUDIO_GENERATION=queue) records its generation and image ids there, or its error, for the web app that
waits on it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 07:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", recreate="never") as batch:  # no rebuild: the queue's rows stay
        batch.add_column(sa.Column("result", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs", recreate="never") as batch:
        batch.drop_column("result")
