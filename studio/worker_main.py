"""A worker process with every job kind: ``studio worker --kinds generate,train`` (or ``python -m
studio.worker_main``), the web app's own worker, and workers on other machines.

The composition root of a worker: training jobs run in :mod:`studio.training.worker` itself; generation jobs
(queued by a web app with ``STUDIO_GENERATION=queue``) run through the generation service's engine and saver
(:class:`~studio.services.generation_worker.GenerationJobRunner`), which is built here, above both layers.
"""

from __future__ import annotations

import argparse
import logging
import sys

from studio.config import Settings, SettingsError
from studio.errors import StudioError
from studio.training.worker import JobRunner, parse_kinds, run_worker


def default_kinds(settings: Settings) -> str:
    """What a worker claims unless told: training, and generation when the studio queues it."""
    return "generate,train" if settings.generation == "queue" else "train"


def job_runners(settings: Settings, kinds: tuple[str, ...]) -> dict[str, JobRunner]:
    """The runners of ``kinds`` other than training (built in): generation's engine and saver."""
    if "generate" not in kinds:
        return {}
    from studio.services.container import build_services
    from studio.services.editing_queue import QueuedEdits
    from studio.services.generation_save import GenerationSaver
    from studio.services.generation_worker import GenerationJobRunner

    services = build_services(settings, migrate=False)
    saver = GenerationSaver(services.sessions, settings)
    edits = QueuedEdits(settings)  # edits too: their sources and masks are in the shared data folder
    runner = GenerationJobRunner(
        services.sessions, services.engines.get, saver, edits, batch_max=settings.generation_batch_max
    )
    return {"generate": runner}


def run(settings: Settings, *, kinds: str | None = None, once: bool = False, poll: float = 2.0,
        parent_pid: int | None = None) -> int:  # fmt: skip
    """Run a worker for ``kinds`` (comma-separated; default :func:`default_kinds`) until SIGTERM."""
    chosen = parse_kinds(kinds or default_kinds(settings))
    runners = job_runners(settings, chosen)
    return run_worker(settings, once=once, poll=poll, parent_pid=parent_pid, kinds=chosen, runners=runners)


def main(argv: list[str] | None = None) -> int:
    """``python -m studio.worker_main [--kinds generate,train] [--once] [--poll S] [--parent-pid PID]``."""
    parser = argparse.ArgumentParser(description="Run Brand Studio jobs: generation and/or LoRA training.")
    parser.add_argument("--kinds", help="generate, train or generate,train (default: train, and generate "
                        "when STUDIO_GENERATION=queue)")  # fmt: skip
    parser.add_argument("--once", action="store_true", help="run at most one job, then exit")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between queue checks when idle")
    parser.add_argument("--parent-pid", type=int, help="exit when this process (the web app) is gone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    try:
        settings = Settings.from_env()
        return run(settings, kinds=args.kinds, once=args.once, poll=args.poll, parent_pid=args.parent_pid)
    except (SettingsError, StudioError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
