"""Running one claimed training job (kind ``lora``): its folders, the reporter that ties the training run to
the job row (progress, checkpoints, cancel, heartbeat, drain), and :func:`run_job`, which takes the job to a
final state or hands it back. :mod:`studio.training.worker` claims the jobs and calls it.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.config import Settings
from studio.errors import StudioError
from studio.storage import home_path, stored_path
from studio.training.queue import DEFAULT_HEARTBEAT_SECONDS, ClaimedJob, JobQueue

log = logging.getLogger("studio.worker")


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
        draining: threading.Event | None = None,
    ) -> None:
        self.queue = queue
        self.draining = draining or threading.Event()  # set: the worker drains, hand the job back
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
        if self.draining.is_set():
            raise TrainingStopped("drain")

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


def sample_signer(
    settings: Settings, job: ClaimedJob, model: Any
) -> Callable[[bytes, dict[str, Any]], bytes]:
    """``sign(png, facts)`` for the job's checkpoint samples: a ``c2pa.created`` manifest (trained
    algorithmic media) whose ``com.brandstudio.training_sample`` names the job, brand, adapter (the LoRA) and
    base model. The credentials are read here, so a missing key fails the job before any sample is drawn."""
    from studio.provenance import manifest as mf
    from studio.provenance.sign import credentials_for, sign_generated

    credentials_for(settings)
    brand, adapter = job.config.get("brand"), job.config.get("adapter")
    common = {
        "training_job": job.id,
        "brand": brand,
        "adapter": adapter,
        "base_model": model.ref,
        "base_model_revision": model.revision,
        "base_model_hash": model.content_hash,
        "family": model.family,
        "prompt_included": False,
    }

    def sign(png: bytes, facts: dict[str, Any]) -> bytes:
        with_lora = f"LoRA {adapter}" if facts.get("lora") else f"no LoRA (baseline for {adapter})"
        description = f"training sample of job {job.id} with {with_lora} on {model.ref}"
        title = f"training-job-{job.id}-{facts['sample'].replace('/', '-')}"
        data = mf.training_sample_assertion(**common, **facts)
        return sign_generated(settings, png, data, title=title, description=description)

    return sign


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


def run_job(
    queue: JobQueue, settings: Settings, job: ClaimedJob, draining: threading.Event | None = None
) -> str:
    """Run one claimed job to a final state; returns that state, ``lost``, or ``handed back`` (``draining``
    was set: the job went back to the queue at the next step, to resume from its last checkpoint)."""
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
    reporter = JobReporter(queue, settings, job, draining=draining)
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
                device=device, reporter=reporter, sign_sample=sample_signer(settings, job, model),
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
        if stop.reason == "drain":
            step = queue.hand_back(job.id, job.worker_id, "the worker was stopped (drained)")
            return "handed back" if step is not None else "lost"
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
