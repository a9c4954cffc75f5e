"""The worker side of queued generation (``studio worker --kinds generate``): :class:`GenerationJobRunner`.

It runs the engine on a claimed job's request, reports progress and reads the cancel flag every step
(throttled), beats while it runs, and saves the images and ends the job in **one transaction**: if the job is
no longer its own (its heartbeat went stale and another worker took it), nothing is kept, so no request is
saved twice. A worker that dies mid-job stops beating; the job goes back to the queue and runs again with the
same seed: same pixels.

**Batches** (``STUDIO_GENERATION_BATCH_MAX`` above 1). After claiming a text-to-image job the runner claims
more queued jobs that can share its pipeline call (:func:`~studio.engine.batching.batch_key`; in turn between
users, :mod:`~studio.training.queue_companions`), up to the images one call may hold
(:class:`~studio.engine.batching.BatchSizer`), and runs them as one call. Each job keeps its own progress,
cancel flag, heartbeat and transaction. With the engine's batch-invariant kernels each image is the one its
request makes alone. A request's images finish together in a batch, so a request cancelled in one ends
without images. A batch that runs out of memory runs again one request at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from studio.db.generation_models import Generation
from studio.errors import ModelError, StudioError
from studio.services.generation_job_rows import error_of, from_config
from studio.services.generation_jobs import POLL_S
from studio.services.generation_save import GenerationSaver
from studio.training.queue import ClaimedJob, JobQueue, heartbeat_seconds
from studio.training.queue_companions import claim_companions

if TYPE_CHECKING:  # pragma: no cover
    from studio.engine.batching import BatchSizer
    from studio.engine.generate import Prepared


@dataclass
class _Follow:
    """Progress written to the row and its cancel flag read, at most every :data:`POLL_S`."""

    queue: JobQueue
    job: ClaimedJob
    cancel: threading.Event
    lost: bool = False
    _last: float = 0.0

    def __call__(self, step: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < POLL_S and step < total:
            return
        self._last = now
        control = self.queue.progress(self.job.id, self.job.worker_id, step=step, loss=None)
        if control.lost:
            self.lost = True
        if control.cancel or control.lost:
            self.cancel.set()


@dataclass
class _Outcome:
    """What the engine made of one job: images and final status, or the status it already ended with."""

    images: list[Any]
    status: str
    requested: int


class GenerationJobRunner:
    """Runs claimed ``generate`` jobs in a worker: engine, then save and end each job in one transaction."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        engine: Callable[[], Any],
        saver: GenerationSaver,
        edits: Any = None,
        batch_max: int = 1,
    ) -> None:
        """``edits``: a :class:`~studio.services.editing_queue.QueuedEdits` to run queued edits (a job row
        with an ``edit`` fails on a runner without one). ``batch_max``: images per pipeline call (1: each job
        alone, its images one call each)."""
        self._sessions = sessions
        self._engine = engine
        self._saver = saver
        self._edits = edits
        self._batch_max = max(1, int(batch_max))
        self._sizer: BatchSizer | None = None

    def __call__(self, queue: JobQueue, job: ClaimedJob, draining: threading.Event | None = None) -> str:
        """Run one job (and the companions batched with it) to its end; returns the first job's final
        status, or ``lost``. Draining does not stop it (it is short): it is finished, then the worker
        exits."""
        batch = self._companions(job)
        follows = [_Follow(queue, one, threading.Event()) for one in [job, *(b[0] for b in batch or ())]]
        stop_beat = threading.Event()
        beat = threading.Thread(target=self._beat, args=(queue, follows, stop_beat), daemon=True)
        beat.start()
        try:
            if batch is None:
                return self._finish(queue, job, follows[0], self._run_alone(queue, job, follows[0]))
            return self._run_batch(queue, job, batch, follows)
        finally:
            stop_beat.set()
            beat.join(timeout=5)

    # ------------------------------------------------------------------------------------- batches

    def _companions(self, job: ClaimedJob) -> list[tuple[ClaimedJob, Prepared]] | None:
        """Claim the queued jobs that can share ``job``'s pipeline call (maybe none: its own images then
        share one call). None when ``job`` runs alone, its images one call each: an edit, no batching, the
        plain kernels, or a request that cannot even be prepared (it fails on its own)."""
        if self._batch_max == 1 or job.config.get("edit") is not None:
            return None
        from studio.engine.batching import BatchSizer, batch_key
        from studio.engine.recipe import INVARIANT_KERNELS

        engine = self._engine()
        try:
            first = engine.prepare(from_config(job.config)[2])
        except StudioError:
            return None
        if first.request.kernels != INVARIANT_KERNELS:  # batched, its pixels would not be its recipe's
            return None
        self._sizer = self._sizer or BatchSizer(self._batch_max)
        room = self._sizer.capacity(engine, first) - int(first.request.batch_size)
        key, found = batch_key(first), {}  # job id → its prepared request

        def fits(job_id: int, config: dict[str, Any]) -> bool:
            if config.get("edit") is not None:
                return False
            try:
                prepared = engine.prepare(from_config(config)[2])
            except (StudioError, KeyError, TypeError, ValueError):
                return False
            if prepared.request.batch_size > room or batch_key(prepared) != key:
                return False
            found[job_id] = prepared
            return True

        claimed = claim_companions(self._sessions, job.worker_id, job, fits, room)
        return [(one, found[one.id]) for one in claimed]

    def _run_batch(
        self,
        queue: JobQueue,
        job: ClaimedJob,
        batch: list[tuple[ClaimedJob, Prepared]],
        follows: list[_Follow],
    ) -> str:
        """``job`` and its companions in as few pipeline calls as the batch size allows; each saved apart."""
        from studio.engine.batching import BatchItem, generate_batch

        engine = self._engine()
        jobs = [job, *(one for one, _ in batch)]
        try:
            prepared = [engine.prepare(from_config(job.config)[2]), *(p for _, p in batch)]
        except StudioError:  # the first job alone: it fails with its own error
            return self._finish(queue, job, follows[0], self._run_alone(queue, job, follows[0]))
        items = [BatchItem(p, f, f.cancel) for p, f in zip(prepared, follows, strict=True)]
        outcomes: list[Any] = []
        for chunk in _chunks(items, self._sizer.limit if self._sizer else self._batch_max):
            try:
                outcomes += generate_batch(engine, chunk, self._sizer)
            except (ModelError, MemoryError) as error:
                if len(chunk) == 1:
                    outcomes.append(error)
                    continue
                outcomes += [_alone(engine, item) for item in chunk]  # out of memory: one at a time
            except Exception as error:  # noqa: BLE001 - a crash fails the jobs, never the worker
                outcomes += [error] * len(chunk)
        statuses = [
            self._finish(queue, one, follow, self._outcome(queue, one, follow, outcome))
            for one, follow, outcome in zip(jobs, follows, outcomes, strict=True)
        ]
        return statuses[0]

    # -------------------------------------------------------------------------------- one job alone

    def _run_alone(self, queue: JobQueue, job: ClaimedJob, follow: _Follow) -> _Outcome | str:
        edit = job.config.get("edit")
        try:
            _actor, _plan, request = from_config(job.config)
            if edit is not None:
                if self._edits is None:
                    raise StudioError("this worker does not run edits")
                images = self._edits.run(edit, request, self._engine(), follow, follow.cancel)
            else:
                images = self._engine().generate(request, progress=follow, cancel=follow.cancel)
        except Exception as error:  # noqa: BLE001 - judged by _outcome
            return self._outcome(queue, job, follow, error)
        return self._outcome(queue, job, follow, images)

    def _outcome(self, queue: JobQueue, job: ClaimedJob, follow: _Follow, result: Any) -> _Outcome | str:
        """The engine's images (or its exception) as an outcome to save, or the status the job ended with."""
        from studio.engine.generate import GenerationCancelled

        if isinstance(result, list):
            return _Outcome(result, "succeeded", len(result))
        if isinstance(result, GenerationCancelled):
            if follow.lost:
                return "lost"
            if not result.images:
                queue.finish(job.id, job.worker_id, "cancelled", "cancelled before an image was finished")
                return "cancelled"
            return _Outcome(list(result.images), "cancelled", result.requested)
        error = (
            result
            if isinstance(result, StudioError)
            else StudioError(f"the generation crashed: {type(result).__name__}: {result}"[:1000])
        )
        queue.finish(job.id, job.worker_id, "failed", f"failed: {error}", result={"error": error_of(error)})
        return "failed"

    def _finish(self, queue: JobQueue, job: ClaimedJob, follow: _Follow, outcome: _Outcome | str) -> str:
        """Save the outcome's images and end the job in one transaction (nothing kept if the job was lost)."""
        if isinstance(outcome, str):
            return outcome
        if follow.lost:
            return "lost"
        images, status, requested = outcome.images, outcome.status, outcome.requested
        done = (
            f"{len(images)} of {requested} image(s)" if status == "cancelled" else f"{len(images)} image(s)"
        )
        actor, plan, request = from_config(job.config)
        edit = job.config.get("edit")
        lineage = None if edit is None else self._edits.rows(actor, edit, images)

        def end_job(session: Session, generation: Generation) -> None:
            if lineage is not None:
                lineage(session, generation)
            result = {"generation_id": generation.id, "image_ids": [i.id for i in generation.images],
                      "requested": requested}  # fmt: skip
            if not queue.finish(job.id, job.worker_id, status, done, result=result, session=session):
                raise JobLost(f"job {job.id} is no longer this worker's")

        try:
            self._saver.save(actor, plan, request, images, within=end_job)
        except JobLost:
            return "lost"
        except StudioError as error:
            queue.finish(
                job.id, job.worker_id, "failed", f"failed: {error}", result={"error": error_of(error)}
            )
            return "failed"
        return status

    @staticmethod
    def _beat(queue: JobQueue, follows: Sequence[_Follow], stop: threading.Event) -> None:
        while not stop.wait(heartbeat_seconds()):
            for follow in follows:
                try:
                    control = queue.heartbeat(follow.job.id, follow.job.worker_id)
                except Exception:  # noqa: BLE001, S112 - a busy database must not kill the heartbeat
                    continue
                if control.lost:
                    follow.lost = True
                if control.cancel or control.lost:
                    follow.cancel.set()


class JobLost(StudioError):
    """The job was handed to another worker while this one ran it: its images are not kept."""


def _chunks(items: list[Any], limit: int) -> list[list[Any]]:
    """Consecutive groups of items holding at most ``limit`` images each (an item larger than that alone)."""
    chunks: list[list[Any]] = []
    for item in items:
        if chunks and sum(i.images for i in chunks[-1]) + item.images <= limit:
            chunks[-1].append(item)
        else:
            chunks.append([item])
    return chunks


def _alone(engine: Any, item: Any) -> Any:
    """One request of a batch that ran out of memory, on its own (its images one call each)."""
    try:
        return engine.generate(item.prepared.request, progress=item.progress, cancel=item.cancel)
    except Exception as error:  # noqa: BLE001 - judged by GenerationJobRunner._outcome
        return error
