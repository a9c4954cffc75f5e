"""Run Alembic migrations from code; back up a SQLite file before migrating it."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from studio.config import Settings
from studio.db.engine import make_engine

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


@dataclass(frozen=True)
class UpgradeResult:
    """What :func:`upgrade` did: revisions before and after, and the backup it made (if any)."""

    from_revision: str | None
    to_revision: str | None
    backup: Path | None

    @property
    def changed(self) -> bool:
        return self.from_revision != self.to_revision


def alembic_config(settings: Settings) -> Config:
    """An Alembic config pointing at ``migrations/`` and the settings' database."""
    if not (MIGRATIONS_DIR / "env.py").is_file():
        raise FileNotFoundError(f"migrations folder not found at {MIGRATIONS_DIR}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", settings.database_url.replace("%", "%%"))
    cfg.attributes["configure_logging"] = False
    cfg.attributes["studio_base_model"] = settings.base_model  # the studio default, for data migrations
    return cfg


def head_revision(settings: Settings) -> str | None:
    """The newest revision in ``migrations/``."""
    return ScriptDirectory.from_config(alembic_config(settings)).get_current_head()


def current_revision(settings: Settings) -> str | None:
    """The revision the database is at (None for an empty database)."""
    path = settings.sqlite_path
    if path is not None and not path.exists():
        return None
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def backup_sqlite(db_path: Path, backups_dir: Path, label: str) -> Path:
    """Copy a live SQLite file (WAL included) into ``backups_dir`` atomically; returns the copy's path."""
    backups_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = backups_dir / f"{db_path.stem}-{stamp}-{label}.db"
    tmp = backups_dir / f".{target.name}.tmp"
    src = sqlite3.connect(str(db_path))
    try:
        dst = sqlite3.connect(str(tmp))
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, target)
    return target


def upgrade(settings: Settings, revision: str = "head") -> UpgradeResult:
    """Migrate the database to ``revision``; an existing SQLite file with pending migrations is backed up."""
    settings.home.mkdir(parents=True, exist_ok=True)
    cfg = alembic_config(settings)
    before = current_revision(settings)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    backup: Path | None = None
    path = settings.sqlite_path
    if before != head and path is not None and path.exists() and path.stat().st_size > 0:
        backup = backup_sqlite(path, settings.backups_dir, before or "base")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(cfg, revision)
    return UpgradeResult(from_revision=before, to_revision=current_revision(settings), backup=backup)
