"""Engine and session factory. SQLite connections get WAL (with synchronous=NORMAL), foreign keys and a busy
timeout.

WAL with ``synchronous=NORMAL`` is SQLite's recommended pairing: a commit no longer waits for an fsync
(the WAL is synced at checkpoints), the database stays consistent after a crash or power loss, and only the
last commits before a power loss (not an application crash) can be rolled back. ``studio doctor`` reports
and cleans an image file whose row was lost that way.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

BUSY_TIMEOUT_MS = 5000


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def install_pragmas(engine: Engine) -> Engine:
    """Apply the SQLite pragmas on every new connection of ``engine`` (no-op for other databases)."""
    if engine.dialect.name == "sqlite" and not event.contains(engine, "connect", _sqlite_pragmas):
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def make_engine(database_url: str, **kwargs: Any) -> Engine:
    """Create an engine for ``database_url`` with the studio's connection settings."""
    if database_url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {}).setdefault("timeout", BUSY_TIMEOUT_MS / 1000)
    else:
        kwargs.setdefault("pool_pre_ping", True)
    return install_pragmas(create_engine(database_url, **kwargs))


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (views are built after the commit)."""
    return sessionmaker(engine, expire_on_commit=False)
