"""The real Alembic migrations on a temporary SQLite file and on PostgreSQL (``database_url``): schema,
upgrade and downgrade, pragmas and backups (SQLite), portability."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect, text

from studio.config import Settings
from studio.db import load_all_models, migrate
from studio.db.base import Base
from studio.db.engine import make_engine


@contextmanager
def connect(settings: Settings) -> Iterator[Connection]:
    """A connection to the test database (either backend), committed at the end."""
    engine = make_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def table_names(settings: Settings) -> set[str]:
    engine = make_engine(settings.database_url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_on_an_empty_folder_creates_every_table(settings: Settings) -> None:
    result = migrate.upgrade(settings)
    assert result.from_revision is None
    assert result.to_revision == migrate.head_revision(settings)
    assert result.backup is None  # nothing to back up yet
    assert {t.name for t in Base.metadata.sorted_tables} | {"alembic_version"} <= table_names(settings)


def test_downgrade_to_base_and_up_again(settings: Settings) -> None:
    """Every migration's downgrade runs on this backend, and the upgrade after it too."""
    migrate.upgrade(settings)
    with connect(settings) as conn:
        conn.execute(
            text("insert into audit_events (at, actor, action, details) values (:at, 'x', 'm', '{}')"),
            {"at": "2026-01-01"},
        )
    command.downgrade(migrate.alembic_config(settings), "base")
    assert table_names(settings) <= {"alembic_version"}
    assert migrate.current_revision(settings) is None
    assert migrate.upgrade(settings).to_revision == migrate.head_revision(settings)
    assert {t.name for t in Base.metadata.sorted_tables} <= table_names(settings)


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


@pytest.mark.sqlite_only
def test_every_connection_gets_the_pragmas(services) -> None:  # noqa: ANN001
    for _ in range(2):  # a new pooled connection each time
        with services.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        services.engine.dispose()


@pytest.mark.sqlite_only
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


@pytest.mark.sqlite_only
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


def test_brand_models_become_the_default_unless_their_brand_file_pins_one(
    settings: Settings, tmp_path: Path
) -> None:
    """0006: ``brands.base_model`` NULL = the studio default. A row keeps its model only when its brand.toml
    names one (before, the setting was copied into every other row). The brands' children survive (no table
    rebuild); the downgrade writes the studio default back into the rows that follow it."""
    settings = dataclasses.replace(settings, base_model="org/studio-default")
    migrate.upgrade(settings, "0005")
    folders = {}
    for slug, toml in (("pinned", 'base_model = "org/pinned"\n'), ("plain", 'slug = "plain"\n')):
        folders[slug] = tmp_path / slug
        folders[slug].mkdir()
        (folders[slug] / "brand.toml").write_text(toml)
    with connect(settings) as conn:
        for slug, model, source in (
            ("made", "embedded:toyworld", None),
            ("pinned", "org/pinned", str(folders["pinned"])),
            ("plain", "embedded:toyworld", str(folders["plain"])),
        ):
            conn.execute(
                text(
                    "insert into brands (slug, name, description, palette, style_template, negative_prompt,"
                    " banned_terms, size_presets, default_cfg, default_steps, default_sampler, base_model,"
                    " source_path, created_at, updated_at) values (:slug, :slug, '', '[]', '{prompt}', '',"
                    " '[]', '[]', 7, 20, 'Euler', :model, :source, :at, :at)"
                ),
                {"slug": slug, "model": model, "source": source, "at": "2026-01-01"},
            )
        brand_id = conn.execute(text("select id from brands where slug = 'made'")).scalar_one()
        conn.execute(
            text(
                "insert into lora_adapters (brand_id, name, kind, trigger_words, default_weight, created_at)"
                " values (:brand, 'shine', 'style', '[]', 1, :at)"
            ),
            {"brand": brand_id, "at": "2026-01-01"},
        )
        adapter_id = conn.execute(text("select id from lora_adapters")).scalar_one()
        conn.execute(
            text(
                "insert into lora_versions (adapter_id, file_path, sha256, base_model, published, created_at)"
                " values (:adapter, 'loras/x.safetensors', 'ab', 'embedded:toyworld', :yes, :at)"
            ),
            {"adapter": adapter_id, "yes": True, "at": "2026-01-01"},
        )

    def read(query: str) -> list[tuple[object, ...]]:
        with connect(settings) as conn:
            return [tuple(row) for row in conn.execute(text(query))]

    migrate.upgrade(settings)
    assert read("select slug, base_model from brands order by slug") == [
        ("made", None),
        ("pinned", "org/pinned"),
        ("plain", None),
    ]
    assert read("select name from lora_adapters") == [("shine",)]
    assert read("select base_model, family from lora_versions") == [("embedded:toyworld", None)]

    command.downgrade(migrate.alembic_config(settings), "0005")
    assert read("select slug, base_model from brands order by slug") == [
        ("made", "org/studio-default"),
        ("pinned", "org/pinned"),
        ("plain", "org/studio-default"),
    ]
    engine = make_engine(settings.database_url)
    try:
        assert "family" not in {c["name"] for c in inspect(engine).get_columns("lora_versions")}
    finally:
        engine.dispose()
    assert read("select count(*) from lora_versions") == [(1,)]
    assert migrate.upgrade(settings).to_revision == migrate.head_revision(settings)
