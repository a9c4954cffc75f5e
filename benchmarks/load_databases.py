"""The databases the load benchmarks run against (``load_generate.py --databases sqlite,postgres``): the
studio's own SQLite file, or a fresh database on a private PostgreSQL server, started exactly as the tests
start theirs (``tests/support/postgres.py``: Debian's ``postgresql`` binaries, a temporary folder, a free
port on 127.0.0.1, durability off, stopped and removed at the end).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATABASES = ("sqlite", "postgres")


def parse_databases(text: str) -> list[str]:
    """``sqlite,postgres`` → ``["sqlite", "postgres"]``; SystemExit naming ``--databases`` otherwise."""
    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in DATABASES]
    if not names or unknown or len(set(names)) != len(names):
        raise SystemExit(f"--databases: a comma-separated list of {', '.join(DATABASES)}, not {text!r}")
    return names


class Databases:
    """Hands out a database URL per run: None for SQLite (the run's own file), or a fresh PostgreSQL
    database on the one private server."""

    def __init__(self, server: object | None) -> None:
        self._server = server

    def url(self, name: str) -> str | None:
        if name == "sqlite":
            return None
        assert self._server is not None
        return self._server.fresh_database()  # type: ignore[attr-defined]


@contextmanager
def databases(names: list[str]) -> Iterator[Databases]:
    """The databases for ``names``: a private PostgreSQL server is started (and stopped afterwards) only
    when ``postgres`` is among them; SystemExit with the reason if it cannot start."""
    if "postgres" not in names:
        yield Databases(None)
        return
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)
    from support.postgres import PostgresServer, PostgresUnavailable

    try:
        server = PostgresServer.start()
    except PostgresUnavailable as error:
        raise SystemExit(f"--databases postgres: {error}") from None
    print(f"PostgreSQL {server.bindir.parent.name}: a private server on 127.0.0.1:{server.port} "
          "(fsync off, as in the tests)", flush=True)  # fmt: skip
    try:
        yield Databases(server)
    finally:
        server.stop()


def image_ids(home: Path, url: str | None) -> list[int]:
    """Every image row's id, in the run's database (the SQLite file in ``home`` when ``url`` is None)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url or f"sqlite:///{home / 'studio.db'}")
    try:
        with engine.connect() as connection:
            return [row[0] for row in connection.execute(text("SELECT id FROM images ORDER BY id"))]
    finally:
        engine.dispose()
