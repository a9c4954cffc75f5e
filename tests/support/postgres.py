"""A private, throwaway PostgreSQL server for the tests (Debian's ``postgresql`` package; no Docker).

``PostgresServer.start()`` runs ``initdb`` into a temporary folder and ``pg_ctl start`` on a free port of
127.0.0.1 with its socket in that folder, so it never meets a system cluster. PostgreSQL refuses to run as
root: as root, the server runs as the package's ``postgres`` user (or ``nobody``). Durability is switched
off (``fsync``, ``synchronous_commit``, ``full_page_writes``): the data is thrown away at the end.

Each test gets a fresh database: ``CREATE DATABASE .. TEMPLATE`` from an empty one, or from one already
migrated to head (``fresh_database(migrated=True)``), which takes a few tens of milliseconds.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

SUPERUSER = "studio"
EMPTY_TEMPLATE = "studio_empty"
HEAD_TEMPLATE = "studio_head"


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries (``initdb``, ``pg_ctl``) or no ``psycopg`` driver here."""


def find_bindir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding ``initdb`` and ``pg_ctl`` (or $PG_BINDIR)."""
    candidates = [os.environ["PG_BINDIR"]] if os.environ.get("PG_BINDIR") else []
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name), reverse=True
    )
    for folder in candidates:
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    raise PostgresUnavailable(
        "PostgreSQL server binaries not found (no /usr/lib/postgresql/*/bin/initdb): "
        "apt-get install postgresql, or set PG_BINDIR"
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run_as() -> str | None:
    """The user to run the server as: None when not root, else ``postgres`` (the package's) or ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise PostgresUnavailable("running as root and neither a 'postgres' nor a 'nobody' user exists")


@dataclass
class PostgresServer:
    """One running server; ``url(name)`` gives a SQLAlchemy URL for database ``name``."""

    bindir: Path
    folder: Path
    port: int
    user: str | None
    _counter: itertools.count = field(default_factory=lambda: itertools.count(1))

    @classmethod
    def start(cls) -> PostgresServer:
        """initdb + pg_ctl start in a new temporary folder; raises PostgresUnavailable if it cannot."""
        try:
            import psycopg  # noqa: F401
        except ImportError as exc:
            hint = "the psycopg driver is not installed: pip install -e '.[postgres]'"
            raise PostgresUnavailable(hint) from exc
        bindir = find_bindir()
        user = _run_as()
        folder = Path(tempfile.mkdtemp(prefix="studio-pg-"))
        if user is not None:
            info = pwd.getpwnam(user)
            os.chown(folder, info.pw_uid, info.pw_gid)
        server = cls(bindir=bindir, folder=folder, port=_free_port(), user=user)
        try:
            server._initdb()
            log = str(folder / "server.log")
            server._pg_ctl("start", "-w", "-t", "60", "-l", log, "-o", server._options())
            server._make_templates()
        except BaseException:
            server.stop()
            raise
        return server

    @property
    def data(self) -> Path:
        return self.folder / "data"

    def _command(self, *args: str) -> list[str]:
        return (["runuser", "-u", self.user, "--"] if self.user else []) + list(args)

    def _initdb(self) -> None:
        subprocess.run(
            self._command(
                str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync",
            ),
            check=True, capture_output=True, text=True, cwd=self.folder,
        )  # fmt: skip

    def _options(self) -> str:
        return (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )

    def _pg_ctl(self, *args: str) -> None:
        result = subprocess.run(
            self._command(str(self.bindir / "pg_ctl"), "-D", str(self.data), *args),
            capture_output=True, text=True, cwd=self.folder,
        )  # fmt: skip
        if result.returncode != 0:
            log = self.folder / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(f"pg_ctl {args[0]} failed: {result.stderr.strip()}\n{tail}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def execute(self, *statements: str) -> None:
        """Run statements outside a transaction (CREATE/DROP DATABASE need that) on the admin database."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname="postgres", autocommit=True
        ) as conn:
            for statement in statements:
                conn.execute(statement)

    def _make_templates(self) -> None:
        self.execute(
            f"CREATE DATABASE {EMPTY_TEMPLATE} TEMPLATE template0", f"CREATE DATABASE {HEAD_TEMPLATE}"
        )

    def migrate_head_template(self, migrate: Callable[[str], None]) -> None:
        """Migrate the head template once with ``migrate(url)`` (the studio's Alembic upgrade)."""
        migrate(self.url(HEAD_TEMPLATE))

    def fresh_database(self, *, migrated: bool = False) -> str:
        """A new database, empty or a copy of the head template; returns its URL."""
        name = f"t{os.getpid()}_{next(self._counter)}"
        self.execute(f"CREATE DATABASE {name} TEMPLATE {HEAD_TEMPLATE if migrated else EMPTY_TEMPLATE}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a test database, closing any connection a test left open."""
        name = url.rsplit("/", 1)[1]
        self.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        """Stop the server (fast shutdown) and remove its folder."""
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(PostgresUnavailable):
                self._pg_ctl("stop", "-m", "immediate", "-w", "-t", "30")
        shutil.rmtree(self.folder, ignore_errors=True)
