"""Brands say whether their Content Credentials carry the prompt: ``brands.credentials_include_prompt``.

Every PNG the studio writes carries a signed C2PA manifest naming the model, LoRAs and templates; the
prompts are left out (campaign prompts can be confidential) unless an admin turns this on for the brand
(``studio credentials include-prompt BRAND on``). Existing brands start with it off.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 07:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("brands", recreate="never") as batch:  # no rebuild: the brand's rows stay
        batch.add_column(
            sa.Column("credentials_include_prompt", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("brands", recreate="never") as batch:  # no rebuild: the brand's rows stay
        batch.drop_column("credentials_include_prompt")
