"""Logins: failures counted per (name, client address) in ``login_throttles``; sessions end on a change.

- ``login_throttles``: one row per (username, client) pair, and one per client address with ``username = ''``
  (its failures over every name). Failures are counted with one conditional ``UPDATE`` before the password is
  checked, so parallel guesses cannot outrun the lock. Names with no account get rows too (no row tells
  whether a name exists). ``users.failed_attempts`` and ``users.locked_until`` go: the pairs replace them.
- ``users.session_epoch``: moved on a password reset, a disable and a role taken away; a login session
  remembers the epoch it started in and ends when it moves.
- Usernames are stored lowercase (they always were checked lowercase; this makes sure).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 04:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_throttles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_throttles")),
        sa.UniqueConstraint("username", "client", name=op.f("uq_login_throttles_username_client")),
    )
    with op.batch_alter_table("users", recreate="never") as batch:
        batch.add_column(sa.Column("session_epoch", sa.Integer(), nullable=False, server_default="0"))
        batch.drop_column("failed_attempts")
        batch.drop_column("locked_until")
    op.execute(
        "UPDATE users SET username = lower(username) WHERE username <> lower(username) AND NOT EXISTS "
        "(SELECT 1 FROM users AS other WHERE other.username = lower(users.username))"
    )


def downgrade() -> None:
    with op.batch_alter_table("users", recreate="never") as batch:
        batch.add_column(sa.Column("failed_attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("locked_until", sa.DateTime(), nullable=True))
        batch.drop_column("session_epoch")
    op.drop_table("login_throttles")
