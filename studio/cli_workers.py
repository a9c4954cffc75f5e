"""``studio workers``: the live ``studio worker`` processes (machine, pid, device, job kinds, status, current
job, last heartbeat), wherever they run against this database.

One :meth:`~studio.services.workers.WorkerService.list_workers` call; ``studio.cli`` registers it with its own
error handler, services and JSON printer (:func:`add_workers_command`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import typer


def add_workers_command(
    app: typer.Typer,
    handled: Callable[[Any], Any],
    services: Callable[[], Any],
    system: Callable[[], Any],
    print_json: Callable[[Any], None],
) -> None:
    """Register ``studio workers [--json]`` on ``app``, wrapped in ``handled``."""

    @app.command("workers")
    @handled
    def workers(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
        """List the live workers (heartbeat within STUDIO_JOB_STALE_SECONDS), on any machine."""
        found = services().workers.list_workers(system())
        if as_json:
            print_json([{**w.__dict__, "heartbeat_age_s": round(w.heartbeat_age(), 1)} for w in found])
            return
        if not found:
            typer.echo("no live workers (start one with `studio worker`)")
            return
        from studio.services.workers import WORKER_HEADERS, worker_cells

        rows = [WORKER_HEADERS, *(worker_cells(w) for w in found)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(WORKER_HEADERS))]
        for row in rows:
            typer.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
