"""The worker process: ``studio worker [--once]`` (or ``python -m studio.training.worker``).

It marks jobs left running by dead workers as interrupted (at start and periodically), claims the next job
atomically, runs it, and keeps its heartbeat fresh from a background thread. Progress and the cancel flag are
read every training step. A crash or out-of-memory in training fails the job with a clear message; the worker
itself carries on with the next job. The web app runs the worker as a subprocess, so nothing that happens here
can take the web app down.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from studio.config import Settings, SettingsError
from studio.db.engine import make_engine, make_session_factory
from studio.errors import StudioError
from studio.storage import home_path, stored_path
from studio.training.queue import DEFAULT_HEARTBEAT_SECONDS, ClaimedJob, JobQueue, new_worker_id

log = logging.getLogger("studio.worker")

STALE_CHECK_SECONDS = 30.0


def job_dirs(settings: Settings, job_id: int) -> tuple[Path, Path, Path]:
    """(checkpoint folder, sample-image folder, shared latent cache) of a job."""
    return (
        settings.home / "training" / f"job-{job_id}",
        settings.images_dir / "training" / f"job-{job_id}",
        settings.home / "cache" / "training",
    )


def clean_partial_files(folder: Path) -> int:
    """Remove temporary files and staging folders a killed worker left behind; returns how many."""
    removed = 0
    if not folder.is_dir():
        return 0
    for path in list(folder.rglob(".*")):
        if path.is_dir() and path.name.startswith(".staging-"):
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
        elif path.is_file() and path.name.endswith(".tmp"):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


class JobReporter:
    """Connects a training run to its job row: progress, checkpoints, cancel, heartbeat."""

    def __init__(
        self,
        queue: JobQueue,
        settings: Settings,
        job: ClaimedJob,
        *,
        progress_interval: float = 0.5,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_SECONDS,
    ) -> None:
        self.queue = queue
        self.settings = settings
        self.job = job
        self.progress_interval = progress_interval
        self._points: list[list[float]] = []
        self._last_flush = 0.0
        self.step = 0
        self._loss: float | None = None
        self._stop = threading.Event()
        self.lost = threading.Event()
        self.scorer: Any = None  # a quality.Scorer once the config is known (jobs queued with a palette)
        self._beat = threading.Thread(
            target=self._beat_loop, args=(heartbeat_interval,), name=f"heartbeat-{job.id}", daemon=True
        )

    def __enter__(self) -> JobReporter:
        self._beat.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._beat.join(timeout=5)

    def _beat_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                if self.queue.heartbeat(self.job.id, self.job.worker_id).lost:
                    self.lost.set()
                    return
            except Exception:  # noqa: BLE001 - a busy database must not kill the heartbeat
                log.warning("heartbeat of job %s failed", self.job.id, exc_info=True)

    def _check(self, control: Any) -> None:
        from studio.training.trainer import TrainingStopped

        if control.lost or self.lost.is_set():
            raise TrainingStopped("lost")
        if control.cancel:
            raise TrainingStopped("cancelled")

    def flush(self, message: str | None = None) -> None:
        control = self.queue.progress(
            self.job.id,
            self.job.worker_id,
            step=self.step,
            loss=self._loss,
            new_points=self._points or None,
            message=message,
        )
        self._points = []
        self._last_flush = time.monotonic()
        self._check(control)

    def on_status(self, message: str) -> None:
        self.flush(message)

    def on_step(self, step: int, loss: float) -> None:
        self.step, self._loss = step, loss
        self._points.append([step, round(loss, 6)])
        if time.monotonic() - self._last_flush >= self.progress_interval:
            self.flush(f"training: step {step}")
        else:
            self._check(self.queue.poll(self.job.id, self.job.worker_id))

    def quality(self, checkpoint: Any) -> dict[str, Any] | None:
        """The checkpoint's quality-gate scores and images (stored paths); None without a scorer. A scoring
        failure is recorded in the scores, and never stops the training."""
        if self.scorer is None or not checkpoint.quality_paths:
            return None
        self.flush(f"scoring checkpoint {checkpoint.step} against the brand")
        try:
            scores = self.scorer.score(checkpoint.quality_paths)
        except Exception as error:  # noqa: BLE001 - a scoring bug must not lose the checkpoint
            log.warning("scoring checkpoint %s of job %s failed", checkpoint.step, self.job.id, exc_info=True)
            scores = {"error": f"{type(error).__name__}: {error}"[:500]}
        home = self.settings.home
        scores["images"] = {k: [stored_path(home, p) for p in v] for k, v in checkpoint.quality_paths.items()}
        return scores

    def on_checkpoint(self, checkpoint: Any) -> None:
        from studio.training.trainer import TrainingStopped

        quality = self.quality(checkpoint)
        self.flush(f"checkpoint at step {checkpoint.step}")
        ok = self.queue.add_checkpoint(
            self.job.id,
            self.job.worker_id,
            step=checkpoint.step,
            file_path=stored_path(self.settings.home, checkpoint.lora_path),
            sha256=checkpoint.sha256,
            state_path=stored_path(self.settings.home, checkpoint.state_path),
            sample_paths=[stored_path(self.settings.home, p) for p in checkpoint.sample_paths],
            loss=checkpoint.loss,
            quality=quality,
        )
        if not ok:
            raise TrainingStopped("lost")


def out_of_memory_message(job_id: int, config: Any) -> str:
    """What to lower after a CUDA out-of-memory, by setting name; the job resumes from its checkpoint."""
    if config is None:
        return f"out of GPU memory while loading the model; free the GPU, then resume job {job_id}"
    settings = [f"batch size {config.batch_size} → lower it", f"resolution {config.resolution or 'native'}"]
    if not config.gradient_checkpointing:
        settings.append("turn on gradient checkpointing")
    return (
        f"out of GPU memory: {'; '.join(settings)} (expert panel), then resume job {job_id} from its last "
        f"checkpoint (studio jobs resume {job_id})"
    )


def run_job(queue: JobQueue, settings: Settings, job: ClaimedJob) -> str:
    """Run one claimed job to a final state; returns that state (or ``lost``)."""
    import torch

    from studio.engine.devices import choose_device
    from studio.engine.models import resolve_model
    from studio.training.config import TrainConfig, fit_to_memory
    from studio.training.families import make_trainer
    from studio.training.quality import Scorer
    from studio.training.trainer import TrainingStopped, TrainItem, device_memory_gib

    out_dir, samples_dir, cache_dir = job_dirs(settings, job.id)
    clean_partial_files(out_dir)
    clean_partial_files(samples_dir)
    reporter = JobReporter(queue, settings, job)
    config: TrainConfig | None = None
    try:
        with reporter:
            if job.kind != "lora":
                raise StudioError(f"unknown job kind {job.kind!r}")
            device = choose_device(settings.device).device
            asked = TrainConfig.from_dict(job.config["train"])
            model = resolve_model(asked.base_model)  # once: resolving hashes the model folder
            config = fit_to_memory(asked, device, device_memory_gib(device), model.family)
            if job.config.get("quality"):  # queued with the brand's palette: score every checkpoint
                prompts, seeds = config.sample_prompts_for_trigger(), config.sample_seeds
                reporter.scorer = Scorer.for_job(job.config, prompts, seeds)
            items = [
                TrainItem(home_path(settings.home, path), caption, sha)
                for path, caption, sha in job.config["items"]
            ]
            missing = [str(i.path) for i in items if not i.path.is_file()]
            if missing:
                raise StudioError(f"{len(missing)} dataset image file(s) are missing, e.g. {missing[0]}")
            start, state = job.resume_from or 0, None
            if start:
                stored = queue.checkpoint_state(job.id, start)
                state = home_path(settings.home, stored) if stored else None
                if state is None or not state.is_file():
                    raise StudioError(f"cannot resume: the training state of step {start} is missing")
            trainer = make_trainer(
                config, items, model=model, out_dir=out_dir, samples_dir=samples_dir, cache_dir=cache_dir,
                device=device, reporter=reporter,
            )  # fmt: skip
            result = trainer.train(resume_state=state, start_step=start)
        notes = f" ({'; '.join(config.notes)})" if config.notes else ""
        loss = f", final loss {result.loss:.4f}" if result.loss is not None else ""
        done = f"finished {result.steps} steps in {result.seconds:.0f} s{loss}{notes}"
        message = f"{done}; publish a checkpoint to use it"
        return "succeeded" if queue.finish(job.id, job.worker_id, "succeeded", message) else "lost"
    except TrainingStopped as stop:
        if stop.reason == "cancelled":
            step = reporter.step
            queue.finish(
                job.id, job.worker_id, "cancelled", f"cancelled at step {step}; checkpoints are kept"
            )
            return "cancelled"
        return "lost"
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        queue.finish(job.id, job.worker_id, "failed", out_of_memory_message(job.id, config))
        return "failed"
    except StudioError as error:
        queue.finish(job.id, job.worker_id, "failed", f"failed: {error}")
        return "failed"
    except Exception as error:  # noqa: BLE001 - any crash fails the job, never the worker
        traceback.print_exc(file=sys.stderr)
        message = f"training crashed: {type(error).__name__}: {error}"
        queue.finish(job.id, job.worker_id, "failed", message[:1000])
        return "failed"


class Worker:
    """Claims and runs jobs until stopped (or once)."""

    def __init__(self, settings: Settings, *, worker_id: str | None = None, poll: float = 2.0) -> None:
        self.settings = settings
        self.engine = make_engine(settings.database_url)
        self.queue = JobQueue(make_session_factory(self.engine))
        self.worker_id = worker_id or new_worker_id()
        self.poll = poll
        self.stopping = threading.Event()

    def recover(self) -> list[int]:
        """Mark jobs of dead workers interrupted."""
        marked = self.queue.mark_stale()
        for job_id in marked:
            log.warning("job %s was left running by a dead worker: marked interrupted", job_id)
            for folder in job_dirs(self.settings, job_id)[:2]:  # its half-written temporary files go
                clean_partial_files(folder)
        return marked

    def run_once(self) -> str | None:
        """Claim and run one job; None when the queue is empty."""
        job = self.queue.claim(self.worker_id)
        if job is None:
            return None
        log.info("worker %s runs job %s", self.worker_id, job.id)
        status = run_job(self.queue, self.settings, job)
        log.info("job %s: %s", job.id, status)
        return status

    def run(self, *, once: bool = False) -> int:
        """The main loop; returns an exit status."""
        self.recover()
        last_check = time.monotonic()
        while not self.stopping.is_set():
            status = self.run_once()
            if once:
                return 0
            if status is None:
                self.stopping.wait(self.poll)
            if time.monotonic() - last_check > STALE_CHECK_SECONDS:
                self.recover()
                last_check = time.monotonic()
        return 0

    def close(self) -> None:
        self.engine.dispose()


def _stop_when_gone(parent_pid: int, interval: float = 1.0) -> None:
    """SIGTERM this process once `parent_pid` (the web app) is gone, even mid-job.

    The running job is then handed back as interrupted, as on any SIGTERM, and can be resumed from its last
    checkpoint; a web app that was killed (or stopped by a plain SIGTERM) leaves no worker training on.
    """

    def watch() -> None:
        while _alive(parent_pid):
            time.sleep(interval)
        log.info("the web app (pid %s) is gone: the worker stops", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)

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
    settings: Settings, *, once: bool = False, poll: float = 2.0, parent_pid: int | None = None
) -> int:
    """Run a worker in this process until SIGTERM/SIGINT (a running job is handed back as interrupted)."""
    worker = Worker(settings, poll=poll)

    def stop(signum: int, frame: Any) -> None:
        worker.stopping.set()
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    if parent_pid is not None:
        _stop_when_gone(parent_pid)
    try:
        return worker.run(once=once)
    except KeyboardInterrupt:
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
