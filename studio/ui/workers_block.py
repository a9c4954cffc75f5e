"""The Training tab's "Workers" block: the live ``studio worker`` processes on every machine (the same list
as ``studio workers``), refreshed with the tab's job timer. One service call per event
(:meth:`~studio.services.workers.WorkerService.list_workers`; admins only)."""

from __future__ import annotations

from typing import Any

import gradio as gr

from studio.services.container import Services
from studio.services.workers import WORKER_HEADERS, worker_cells
from studio.ui.common import actor_of, shown_to_user

NO_WORKERS = (
    "No live worker: queued jobs wait until one starts (`studio worker` on a GPU machine, or the web app's "
    "own unless it runs with `--no-worker`)."
)


def worker_rows(services: Services, request: gr.Request) -> tuple[list[list[str]], str]:
    """The table's rows and a line under it (how many, or that none is live)."""
    with shown_to_user():
        found = services.workers.list_workers(actor_of(request))
    busy = sum(1 for w in found if w.job_id is not None)
    note = f"{len(found)} live worker{'s' if len(found) != 1 else ''}, {busy} busy" if found else NO_WORKERS
    return [list(worker_cells(w)) for w in found], note


def render_workers(services: Services, timer: gr.Timer) -> None:
    """Add the block where it is called; ``timer`` (the tab's) refreshes it while the tab is open."""

    def list_workers(request: gr.Request) -> tuple[Any, str]:
        return worker_rows(services, request)

    with gr.Accordion("4 · Workers", open=False):
        table = gr.Dataframe(
            headers=list(WORKER_HEADERS), label="Live workers", interactive=False, elem_id="workers-table"
        )
        note = gr.Markdown(elem_id="workers-note")
        refresh = gr.Button("Refresh workers")
    refresh.click(list_workers, None, [table, note], api_name="training_workers")
    timer.tick(list_workers, None, [table, note], api_visibility="private", show_progress="hidden")
