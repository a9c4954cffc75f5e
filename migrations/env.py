"""Alembic environment: batch mode for SQLite, the models' naming convention, the studio's pragmas.

Caution for new migrations: every connection has ``foreign_keys=ON``, and on SQLite batch mode rebuilds a
table (copy, DROP, rename). Dropping a table that others reference with ``ON DELETE CASCADE`` (brands, users,
lora_adapters, ...) deletes the children's rows too. Prefer plain ``op.add_column`` (no rebuild) on such
tables, or rebuild the child tables in the same migration, and test the migration on a populated database.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from studio.db import load_all_models
from studio.db.base import Base
from studio.db.engine import make_engine

load_all_models()  # every studio/db/*models.py registers its tables on Base.metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _database_url() -> str:
    url = config.get_main_option("sqlalchemy.url")
    if url:
        return url
    from studio.config import Settings

    return Settings.from_env().database_url


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )


def run_migrations_offline() -> None:
    context.configure(
        url=_database_url(),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_database_url())  # installs the same connect-event pragmas as the app
    try:
        with engine.connect() as conn:
            _configure(conn)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
