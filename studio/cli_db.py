"""``studio db copy``: move a studio's database to another one (SQLite → PostgreSQL), losing nothing.

One :func:`studio.db.copy.copy_database` call; ``studio.cli`` registers it on its ``db`` group with its own
error handler and settings (:func:`add_db_copy`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer


def add_db_copy(db_app: typer.Typer, handled: Callable[[Any], Any], settings: Callable[[], Any]) -> None:
    """Register ``studio db copy --from URL --to URL`` on ``db_app``, wrapped in ``handled``."""

    @db_app.command("copy")
    @handled
    def db_copy(
        source: Annotated[str, typer.Option("--from", help="The studio's database URL (e.g. sqlite:///…).")],
        target: Annotated[
            str, typer.Option("--to", help="An empty database's URL (e.g. postgresql+psycopg://…).")
        ],
    ) -> None:
        """Copy every table of --from into the empty --to (migrated to head first); print row counts and
        checksums of both sides per table. Exit 1 if any table differs."""
        from studio.db.copy import copy_database

        report = copy_database(settings(), source, target)
        typer.echo(f"copied {report.source} -> {report.target} (schema {report.revision})")
        typer.echo(f"{'table':22} {'rows':>7} {'rows':>7}  {'sha256 (source)':16}  {'sha256 (target)':16}")
        for t in report.tables:
            mark = "" if t.same else "  DIFFERENT"
            typer.echo(
                f"{t.table:22} {t.source.rows:7d} {t.target.rows:7d}  {t.source.sha256[:16]}  "
                f"{t.target.sha256[:16]}{mark}"
            )
        if not report.identical:
            typer.echo("error: the target differs from the source (the tables marked DIFFERENT)", err=True)
            raise typer.Exit(1)
        total = sum(t.source.rows for t in report.tables)
        typer.echo(f"identical: {len(report.tables)} tables, {total} rows")
