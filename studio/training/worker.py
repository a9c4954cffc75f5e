"""The worker process: ``studio worker [--once]`` (or ``python -m studio.training.worker``).

It registers itself in the workers table (machine, pid, device) and beats there every few seconds with what
it is doing, marks jobs left running by dead workers as interrupted (at start and periodically), claims the
next job atomically and runs it (:mod:`studio.training.train_job`). A crash or out-of-memory in a job fails
that job with a clear message; the worker itself carries on with the next one. The web app runs a worker as
a subprocess, so nothing that happens here can take the web app down.

**Stopping.** SIGTERM drains: the worker claims nothing more, hands its running training job back to the
queue at the next step (it resumes from its last checkpoint on any worker), then exits 0. A second SIGTERM,
or SIGINT, stops at once: the running job is marked interrupted. A worker started with ``--parent-pid``
stops that way when the web app is gone.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from studio.config import Settings, SettingsError
from studio.db.engine import make_engine, make_session_factory
from studio.errors import ValidationError
from studio.training.queue import (
    ClaimedJob,
    JobQueue,
    heartbeat_seconds,
    new_worker_id,
    stale_seconds,
)
from studio.training.train_job import (  # noqa: F401 - re-exported: the worker's public names
    JobReporter,
    clean_partial_files,
    job_dirs,
    out_of_memory_message,
    run_job,
)
from studio.training.workers import WorkerRegistry

log = logging.getLogger("studio.worker")

STALE_CHECK_SECONDS = 30.0
#: what ``--kinds`` names → the job kinds claimed (``train``: LoRA training; ``generate``: generation
#: requests queued by a web app with STUDIO_GENERATION=queue)
WORKER_KINDS: dict[str, tuple[str, ...]] = {"train": ("lora",), "generate": ("generate",)}
#: runs one claimed job of a kind to its end: (queue, job, draining) → final status
JobRunner = Callable[[JobQueue, ClaimedJob, threading.Event], str]


def parse_kinds(text: str) -> tuple[str, ...]:
    """``generate,train`` → ("generate", "train"); an unknown kind is a ValidationError naming it."""
    kinds = tuple(dict.fromkeys(k.strip() for k in (text or "").split(",") if k.strip()))
    unknown = [k for k in kinds if k not in WORKER_KINDS]
    if unknown or not kinds:
        raise ValidationError(
            "kinds", f"{', '.join(unknown) or 'none given'}: use {' and/or '.join(WORKER_KINDS)}"
        )
    return kinds


def describe_device(setting: str) -> str:
    """The device this worker's jobs run on, for the workers list (e.g. ``cuda:0 NVIDIA H100 80GB HBM3``)."""
    try:
        import torch

        from studio.engine.devices import choose_device

        device = choose_device(setting).device
        if device == "cuda":
            index = torch.cuda.current_device()
            return f"cuda:{index} {torch.cuda.get_device_name(index)}"
        return device
    except Exception as error:  # noqa: BLE001 - the list says why rather than the worker failing here
        return f"{setting} (unavailable: {error})"[:200]


class Worker:
    """Claims and runs jobs until stopped (or once)."""

    def __init__(
        self,
        settings: Settings,
        *,
        worker_id: str | None = None,
        poll: float = 2.0,
        kinds: tuple[str, ...] = ("train",),
        runners: Mapping[str, JobRunner] | None = None,
    ) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        sessions = make_session_factory(self.engine)
        self.queue = JobQueue(sessions)
        self.registry = WorkerRegistry(sessions)
        self.worker_id = worker_id or new_worker_id()
        self.poll = poll
        self.kinds = kinds
        self.job_kinds = tuple(k for kind in kinds for k in WORKER_KINDS[kind])
        self.runners = dict(runners or {})  # job kind → runner; LoRA training is built in
        self.stopping = threading.Event()  # claim nothing more
        self.draining = threading.Event()  # SIGTERM: hand the running job back, then exit
        self.current_job: int | None = None
        self._beating = threading.Event()

    def drain(self) -> None:
        """Stop claiming; the running job goes back to the queue at its next step; :meth:`run` returns."""
        log.info("worker %s drains (SIGTERM)", self.worker_id)
        self.draining.set()
        self.stopping.set()

    def status(self) -> str:
        """idle, busy or draining (what the workers list shows)."""
        if self.draining.is_set():
            return "draining"
        return "busy" if self.current_job is not None else "idle"

    def _beat_loop(self, interval: float) -> None:
        while not self._beating.wait(interval):
            try:
                self.registry.beat(self.worker_id, status=self.status(), job_id=self.current_job)
            except Exception:  # noqa: BLE001 - a busy database must not kill the heartbeat
                log.warning("worker heartbeat failed", exc_info=True)

    def recover(self) -> list[int]:
        """Mark jobs of dead workers interrupted."""
        marked = self.queue.mark_stale()
        for job_id in marked:
            log.warning("job %s was left running by a dead worker: handed back or marked interrupted", job_id)
            for folder in job_dirs(self.settings, job_id)[:2]:  # its half-written temporary files go
                clean_partial_files(folder)
        return marked

    def run_once(self) -> str | None:
        """Claim and run one job; None when the queue is empty."""
        job = self.queue.claim(self.worker_id, kinds=self.job_kinds)
        if job is None:
            return None
        log.info("worker %s runs job %s (%s)", self.worker_id, job.id, job.kind)
        self.current_job = job.id
        try:
            self.registry.beat(self.worker_id, status=self.status(), job_id=job.id)
            runner = self.runners.get(job.kind)
            if runner is not None:
                status = runner(self.queue, job, self.draining)
            else:
                status = run_job(self.queue, self.settings, job, self.draining)
        finally:
            self.current_job = None
        log.info("job %s: %s", job.id, status)
        return status

    def run(self, *, once: bool = False) -> int:
        """The main loop (registered in the workers table while it runs); returns an exit status."""
        self.registry.register(self.worker_id, device=describe_device(self.settings.device), kinds=self.kinds)
        beat = threading.Thread(
            target=self._beat_loop, args=(heartbeat_seconds(),), name="worker-heartbeat", daemon=True
        )
        beat.start()
        try:
            self.recover()
            last_check = time.monotonic()
            while not self.stopping.is_set():
                status = self.run_once()
                if once:
                    return 0
                if status is None:
                    self.stopping.wait(self.poll)
                if time.monotonic() - last_check > min(STALE_CHECK_SECONDS, stale_seconds()):
                    self.recover()
                    last_check = time.monotonic()
            return 0
        finally:
            self._beating.set()
            beat.join(timeout=5)
            self.registry.stopped(self.worker_id)

    def close(self) -> None:
        self.engine.dispose()


def _stop_when_gone(parent_pid: int, interval: float = 1.0) -> None:
    """SIGINT this process once `parent_pid` (the web app) is gone, even mid-job.

    The running job is then marked interrupted at once and can be resumed from its last checkpoint; a web
    app that was killed (or stopped by a plain SIGTERM) leaves no worker training on.
    """

    def watch() -> None:
        while _alive(parent_pid):
            time.sleep(interval)
        log.info("the web app (pid %s) is gone: the worker stops", parent_pid)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m studio.training.worker [--once] [--parent-pid PID]``."""
    parser = argparse.ArgumentParser(description="Run Brand Studio training jobs.")
    parser.add_argument("--once", action="store_true", help="run at most one job, then exit")
    parser.add_argument("--poll", type=float, default=2.0, help="seconds between queue checks when idle")
    parser.add_argument("--parent-pid", type=int, help="exit when this process (the web app) is gone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return run_worker(settings, once=args.once, poll=args.poll, parent_pid=args.parent_pid)


def run_worker(
    settings: Settings,
    *,
    once: bool = False,
    poll: float = 2.0,
    parent_pid: int | None = None,
    kinds: tuple[str, ...] = ("train",),
    runners: Mapping[str, JobRunner] | None = None,
) -> int:
    """Run a worker in this process until SIGTERM (drain) or SIGINT / a second SIGTERM (stop now: a running
    job is marked interrupted). ``kinds``: see :data:`WORKER_KINDS`; ``runners``: job kind → runner for the
    kinds other than training (``studio worker`` builds the generation runner)."""
    worker = Worker(settings, poll=poll, kinds=kinds, runners=runners)

    def terminate(signum: int, frame: Any) -> None:
        if worker.draining.is_set():
            raise KeyboardInterrupt  # asked twice: stop now
        worker.drain()

    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if parent_pid is not None:
        _stop_when_gone(parent_pid)
    try:
        return worker.run(once=once)
    except KeyboardInterrupt:
        worker.stopping.set()
        _release_running(worker)
        return 0
    finally:
        worker.close()


def _release_running(worker: Worker) -> None:
    from sqlalchemy import select

    from studio.db.training_models import Job

    with worker.queue._sessions() as session:  # noqa: SLF001 - the worker owns this queue
        ids = list(
            session.scalars(select(Job.id).where(Job.worker_id == worker.worker_id, Job.status == "running"))
        )
    for job_id in ids:
        worker.queue.release(
            job_id, worker.worker_id, "interrupted: the worker was stopped; resume to continue"
        )


if __name__ == "__main__":
    sys.exit(main())
