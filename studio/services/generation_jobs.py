"""Generation through the job queue (``STUDIO_GENERATION=queue``): the web app plans, a worker runs.

**Web side** (:class:`GenerationQueue`). The request is planned and checked as inline (permissions, the
brand's rules, every refusal before anything is queued), its seed fixed, and the plan and the engine's
request are written into a ``generate`` job row (JSON: :mod:`~studio.services.generation_job_rows`). The
caller then follows the row: progress from ``step``/``total_steps``, the images from ``result`` once it
succeeded; one :class:`RowWatcher` thread reads every followed row in one query. A cancel marks the row, so
it works whichever machine runs the job. Each user may have
``STUDIO_MAX_QUEUED_PER_USER`` requests queued or running at once; workers take users' requests in turn
(:func:`studio.training.queue.next_queued`). A request that waits while no generation worker has been alive
for ``STUDIO_WORKER_WAIT_SECONDS`` is cancelled with an error saying to start one. The web process loads no
pipeline.

**Worker side**: :mod:`~studio.services.generation_worker` (``studio worker --kinds generate``), which runs
the jobs, batches compatible ones, and saves each job's images and ends it in one transaction.
"""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from studio import errors
from studio.config import Settings
from studio.db.generation_models import Generation
from studio.db.models import Brand
from studio.db.training_models import Job
from studio.engine.request import ProgressCallback
from studio.errors import CancelledError
from studio.services.generation_job_rows import job_config, raise_error
from studio.services.generation_plan import Plan
from studio.services.generation_save import GenerationResult, GenerationSaver
from studio.services.views import Actor
from studio.training.queue import JobQueue
from studio.training.workers import WorkerRegistry

if TYPE_CHECKING:  # pragma: no cover
    from studio.engine.request import GenerationRequest

GENERATE = "generate"  # the job kind
#: how often the web side reads the row it waits on, and the worker writes progress / reads the cancel flag
POLL_S = 0.2
#: how often the web side looks for a live generation worker while requests wait
WORKER_CHECK_S = 2.0


# ------------------------------------------------------------------------------------- web side


class RowWatcher:
    """One thread reads the rows of every job the web app follows, in one query every :data:`POLL_S`, and
    wakes their waiters: the database sees one read per interval, however many requests wait."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._rows: dict[int, tuple[str, int, int] | None] = {}
        self._followers: dict[int, int] = {}
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def follow(self, job_id: int) -> None:
        with self._changed:
            self._followers[job_id] = self._followers.get(job_id, 0) + 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="job-row-watcher", daemon=True)
                self._thread.start()

    def forget(self, job_id: int) -> None:
        with self._changed:
            left = self._followers.get(job_id, 1) - 1
            if left <= 0:
                self._followers.pop(job_id, None)
                self._rows.pop(job_id, None)
            else:
                self._followers[job_id] = left

    def latest(self, job_id: int, after: tuple[str, int, int] | None, timeout: float) -> Any:
        """The row's (status, step, total) once it differs from ``after`` (or after ``timeout``); None while
        it has not been read yet; ``"gone"`` when there is no such job."""
        with self._changed:
            self._changed.wait_for(lambda: self._rows.get(job_id, after) != after, timeout)
            return self._rows.get(job_id)

    def _loop(self) -> None:
        while True:
            with self._changed:
                ids = list(self._followers)
                if not ids:
                    self._thread = None
                    return
            rows = select(Job.id, Job.status, Job.step, Job.total_steps).where(Job.id.in_(ids))
            try:
                with self._sessions() as session:
                    found = {r.id: (r.status, r.step, r.total_steps) for r in session.execute(rows)}
            except Exception:  # noqa: BLE001 - a busy database: try again next time
                found = None
            with self._changed:
                for job_id in ids if found is not None else ():
                    if job_id in self._followers:
                        self._rows[job_id] = found.get(job_id, ("gone", 0, 0))
                self._changed.notify_all()
            time.sleep(POLL_S)


NO_WORKER = (
    "no generation worker has been running for {} s, so the request was not run: start one with "
    "`studio worker --kinds generate` (see docs/deploying.md), then try again"
)


class WorkerWatch:
    """How long no live worker of the ``generate`` kind has been seen (0 while one is); the workers table
    is read at most every :data:`WORKER_CHECK_S`, however many requests wait."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._seen = time.monotonic()  # a worker counts as seen when the web app starts

    def absent_for(self) -> float:
        now = time.monotonic()
        with self._lock:
            if now - self._checked >= WORKER_CHECK_S:
                self._checked = now
                try:
                    with self._sessions() as session:
                        if any(GENERATE in w.kinds for w in WorkerRegistry.live(session)):
                            self._seen = now
                except Exception:  # noqa: BLE001 - a busy database: judge by what was seen last
                    pass
            return now - self._seen


class GenerationQueue:
    """Queues planned requests and follows their rows (the web app, ``STUDIO_GENERATION=queue``)."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, saver: GenerationSaver) -> None:
        self._sessions = sessions
        self._settings = settings
        self._saver = saver
        self._queue = JobQueue(sessions)
        self._watcher = RowWatcher(sessions)
        self._workers = WorkerWatch(sessions)

    def submit(
        self,
        actor: Actor,
        plan: Plan,
        request: GenerationRequest,
        *,
        edit: dict[str, Any] | None = None,
        total_steps: int | None = None,
    ) -> int:
        """Queue a validated request (its seed fixed); returns the job id. Refused (ConflictError) when the
        user already has ``max_queued_per_user`` requests queued or running. ``edit``: the request is an
        edit (:func:`studio.services.editing_queue.edit_config`), of ``total_steps`` denoising steps."""
        owner = "system" if actor.is_system else actor.username
        with self._sessions.begin() as session:
            if not actor.is_system:
                JobQueue.check_user_limit(session, owner, (GENERATE,), self._settings.max_queued_per_user)
            job = JobQueue.enqueue(
                session,
                kind=GENERATE,
                config={**job_config(actor, plan, request), **({"edit": edit} if edit is not None else {})},
                total_steps=total_steps or request.num_inference_steps * request.batch_size,
                brand_id=plan.brand_id,
                created_by=owner,
            )
            return job.id

    def wait(
        self,
        job_id: int,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        timeout_s: float | None = None,
    ) -> GenerationResult:
        """Follow the job until it ends: progress from its row, Cancel written to it; the result from its
        rows (a cancel keeps the images finished before it, or raises CancelledError when there are none);
        a failure raises the worker's error."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        asked_cancel, last, row = False, (-1, -1), None
        self._watcher.follow(job_id)
        try:
            while True:
                row = self._watcher.latest(job_id, row, POLL_S)
                if row == ("gone", 0, 0):
                    raise errors.NotFoundError(f"generation job {job_id} not found")
                status, step, total = row or ("queued", 0, 0)
                if status in ("succeeded", "cancelled", "failed", "interrupted"):
                    if progress is not None and status == "succeeded" and (step, total) != last:
                        progress(step, total)  # the last step reported (a short job may end between reads)
                    with self._sessions() as session:
                        job = session.get(Job, job_id)
                        assert job is not None
                        return self._ended(session, job_id, job.status, job.result or {}, job.message)
                waited = self._settings.worker_wait_seconds
                if status == "queued" and self._workers.absent_for() > waited and self._give_up(job_id):
                    raise errors.ConflictError(NO_WORKER.format(waited))
                if cancel is not None and cancel.is_set() and not asked_cancel:
                    asked_cancel = True
                    with self._sessions.begin() as session:
                        job = session.get(Job, job_id)
                        if job is not None and job.status in ("queued", "running"):
                            JobQueue.request_cancel(session, job)
                    continue
                if progress is not None and status == "running" and (step, total) != last:
                    progress(step, total)
                    last = (step, total)
                if deadline is not None and time.monotonic() > deadline:
                    raise errors.ConflictError(f"generation job {job_id} did not finish in {timeout_s:g} s")
        finally:
            self._watcher.forget(job_id)

    def _give_up(self, job_id: int) -> bool:
        """Cancel a job still queued (no worker came for it); False if a worker has claimed it since."""
        with self._sessions.begin() as session:
            job = session.get(Job, job_id)
            if job is None or job.status != "queued":
                return False
            JobQueue.request_cancel(session, job)
            job.message = "cancelled: no generation worker was running"
            return True

    def _ended(
        self, session: Session, job_id: int, status: str, result: dict[str, Any], message: str
    ) -> GenerationResult:
        if status == "failed" or (status == "interrupted" and "error" in result):
            raise_error(result.get("error") or {"message": message})
        if not result.get("generation_id"):
            raise CancelledError("generation cancelled" if status == "cancelled" else message)
        generation = session.get(Generation, int(result["generation_id"]))
        if generation is None:
            raise errors.NotFoundError(f"the generation of job {job_id} is gone")
        slug = session.scalar(select(Brand.slug).where(Brand.id == generation.brand_id)) or ""
        views = [self._saver.image_view(image, generation, slug) for image in generation.images]
        return GenerationResult(
            generation_id=generation.id,
            brand_slug=slug,
            prompt=generation.final_prompt,
            negative_prompt=generation.final_negative_prompt,
            cfg=generation.cfg,
            seed=generation.seed,
            images=tuple(replace(v, download_path=self._saver.download_link(v)) for v in views),
            cancelled=status == "cancelled",
            requested=int(result.get("requested") or len(views)),
        )
