"""The real Alembic migrations on a temporary SQLite file: schema, pragmas, backups, portability."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from studio.config import Settings
from studio.db import load_all_models, migrate
from studio.db.base import Base


def test_upgrade_on_an_empty_folder_creates_every_table(settings: Settings) -> None:
    result = migrate.upgrade(settings)
    assert result.from_revision is None
    assert result.to_revision == migrate.head_revision(settings)
    assert result.backup is None  # nothing to back up yet
    conn = sqlite3.connect(settings.sqlite_path)
    tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    conn.close()
    assert {t.name for t in Base.metadata.sorted_tables} | {"alembic_version"} <= tables


def test_models_and_migrations_agree(services) -> None:  # noqa: ANN001
    load_all_models()
    with services.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_constraint_names_follow_the_naming_convention(services) -> None:  # noqa: ANN001
    insp = inspect(services.engine)
    fks = {fk["name"] for fk in insp.get_foreign_keys("lora_adapters")}
    assert fks == {"fk_lora_adapters_brand_id_brands", "fk_lora_adapters_active_version_id_lora_versions"}
    assert {u["name"] for u in insp.get_unique_constraints("brands")} == {"uq_brands_slug"}


def test_every_connection_gets_the_pragmas(services) -> None:  # noqa: ANN001
    for _ in range(2):  # a new pooled connection each time
        with services.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        services.engine.dispose()


def test_migrations_run_with_foreign_keys_on(settings: Settings) -> None:
    """env.py builds its own engine: check it applies the listener by spying on the pragma."""
    from sqlalchemy import event

    from studio.db import engine as engine_module

    seen: list[int] = []
    original = engine_module.make_engine

    def spying_make_engine(url: str, **kwargs):  # noqa: ANN202, ANN003
        built = original(url, **kwargs)

        @event.listens_for(built, "connect")
        def _check(dbapi_connection, record) -> None:  # noqa: ANN001
            seen.append(dbapi_connection.execute("PRAGMA foreign_keys").fetchone()[0])

        return built

    engine_module.make_engine = spying_make_engine
    try:
        migrate.upgrade(settings)
    finally:
        engine_module.make_engine = original
    assert seen and all(v == 1 for v in seen)


def test_existing_database_with_pending_migrations_is_backed_up_first(settings: Settings) -> None:
    migrate.upgrade(settings)
    conn = sqlite3.connect(settings.sqlite_path)
    conn.execute(
        "insert into audit_events (at, actor, action, details) values ('2026-01-01', 'x', 'marker', '{}')"
    )
    conn.commit()
    conn.close()
    command.downgrade(migrate.alembic_config(settings), "base")  # now the file has pending migrations
    result = migrate.upgrade(settings)
    assert result.backup is not None and result.backup.parent == settings.backups_dir
    assert [p.name for p in settings.backups_dir.iterdir()] == [result.backup.name]  # no temp file left
    copy = sqlite3.connect(result.backup)
    assert copy.execute("select count(*) from alembic_version").fetchone() == (0,)
    copy.close()
    again = migrate.upgrade(settings)  # up to date: no new backup
    assert again.backup is None and len(list(settings.backups_dir.iterdir())) == 1


def test_migrations_render_for_postgresql(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    """Offline SQL for PostgreSQL: the migration uses no SQLite-only operations."""
    pg = Settings(home=tmp_path, database_url="postgresql://studio@localhost/studio")
    command.upgrade(migrate.alembic_config(pg), "head", sql=True)
    sql = capsys.readouterr().out
    assert "CREATE TABLE lora_versions" in sql
    assert "ALTER TABLE lora_adapters ADD CONSTRAINT fk_lora_adapters_active_version_id_lora_versions" in sql
    assert "PRAGMA" not in sql
