"""The persistent job queue: a state machine in SQL that works the same on SQLite and PostgreSQL.

States: queued → running → succeeded | failed | cancelled | interrupted. A worker **claims** the next job
with a conditional UPDATE (``... WHERE id = :id AND status = 'queued'``) inside its own transaction and owns
it only if exactly one row changed, so two workers never run the same job. On PostgreSQL the candidate is
read with ``SELECT .. FOR UPDATE SKIP LOCKED``: workers claiming at once each lock a different row instead
of queueing behind (and then losing) the same one. SQLite has one writer at a time and no row locks.
A running job's worker writes a **heartbeat**; a job whose heartbeat is older than the stale limit is marked
``interrupted`` (on worker start and periodically); a generation job is queued again instead (its request
fixes the seed, so another worker makes the same pixels), up to :data:`MAX_ATTEMPTS` claims. **Cancel** of
a queued job is immediate; of a running one it sets ``cancel_requested``, which the worker reads every step.
**Resume** puts an interrupted/failed/cancelled job back in the queue, to continue from its last checkpoint.

**Fair share.** Within a priority, the claim goes round the users who have jobs waiting, the one served
least recently first (:func:`next_queued`); :meth:`JobQueue.check_user_limit` caps what one user may have
queued or running at once (``STUDIO_MAX_QUEUED_PER_USER`` for generation requests).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from studio.db import load_all_models
from studio.db.base import utcnow
from studio.db.models import User
from studio.db.training_models import Job, JobCheckpoint
from studio.errors import ConflictError, NotFoundError

DEFAULT_STALE_SECONDS = 60.0
DEFAULT_HEARTBEAT_SECONDS = 5.0
FINAL = ("succeeded", "failed", "cancelled")
RESUMABLE = ("interrupted", "failed", "cancelled")
MAX_LOSS_POINTS = 2000
#: kinds whose job a dead worker hands back to the queue (run again from the start: same seed, same pixels)
RERUN_KINDS = ("generate",)
#: how many times such a job is claimed before a death more fails it
MAX_ATTEMPTS = 3
SKIP_LOCKED_DIALECTS = ("postgresql",)  # the claim's SELECT .. FOR UPDATE SKIP LOCKED

load_all_models()  # the jobs table's foreign keys name tables of other model modules (brands, datasets)


def new_worker_id() -> str:
    """``host:pid:random`` — unique per worker process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def stale_seconds() -> float:
    """How old a heartbeat may get before its job counts as interrupted (STUDIO_JOB_STALE_SECONDS)."""
    try:
        return max(0.5, float(os.environ.get("STUDIO_JOB_STALE_SECONDS", DEFAULT_STALE_SECONDS)))
    except ValueError:
        return DEFAULT_STALE_SECONDS


def heartbeat_seconds() -> float:
    """How often a running job and a worker beat: every 5 s, or a third of the stale limit if that is less."""
    return min(DEFAULT_HEARTBEAT_SECONDS, stale_seconds() / 3)


@dataclass(frozen=True)
class ClaimedJob:
    """What a worker needs from a job it has claimed."""

    id: int
    kind: str
    config: dict[str, Any]
    resume_from: int | None
    worker_id: str


@dataclass(frozen=True)
class Control:
    """What the worker should do after a progress report."""

    cancel: bool = False
    lost: bool = False  # the job is no longer ours (marked interrupted, or finished by someone else)


def next_queued(session: Session, kinds: Sequence[str] | None = None) -> int | None:
    """The id of the job to claim next, or None: among the queued jobs of ``kinds`` with the highest
    priority, the oldest one of the user whose last job (of those kinds) started longest ago, users never
    served first. This round-robin between users means one user's batch of 64 waits behind one request of
    each other user, not the other way round. On PostgreSQL the row is read ``FOR UPDATE SKIP LOCKED``
    (a row another claim holds is passed over); if every job of the chosen user is held, any queued job."""
    anything = [Job.status == "queued"] + ([Job.kind.in_(kinds)] if kinds is not None else [])
    top = session.scalar(select(func.max(Job.priority)).where(*anything))
    if top is None:
        return None
    queued = [*anything, Job.priority == top]
    waiting = dict(
        session.execute(select(Job.created_by, func.min(Job.id)).where(*queued).group_by(Job.created_by))
        .tuples()
        .all()
    )
    locking = session.get_bind().dialect.name in SKIP_LOCKED_DIALECTS
    if not waiting:  # claimed by others since: take whatever is left, in the plain order
        query = select(Job.id).where(*anything).order_by(Job.priority.desc(), Job.id).limit(1)
        return session.scalar(query.with_for_update(skip_locked=True) if locking else query)
    served = last_served(session, list(waiting), kinds)
    user = min(waiting, key=lambda name: (served[name], waiting[name]))
    for where in ([*queued, Job.created_by == user], queued):
        query = select(Job.id).where(*where).order_by(Job.id).limit(1)
        candidate = session.scalar(query.with_for_update(skip_locked=True) if locking else query)
        if candidate is not None:
            return candidate
    return None


def last_served(session: Session, users: Sequence[str], kinds: Sequence[str] | None) -> dict[str, datetime]:
    """When each of ``users`` last had a job of ``kinds`` started (the earliest time for those never served):
    the round-robin's order, least recently served first."""
    served_of = [Job.created_by.in_(list(users)), Job.started_at.is_not(None)]
    if kinds is not None:
        served_of.append(Job.kind.in_(kinds))
    served = dict(
        session.execute(
            select(Job.created_by, func.max(Job.started_at)).where(*served_of).group_by(Job.created_by)
        )
        .tuples()
        .all()
    )
    never = datetime.min.replace(tzinfo=UTC)
    return {user: served.get(user) or never for user in users}


def take(session: Session, job_id: int, worker_id: str, message: str = "starting") -> ClaimedJob | None:
    """Claim the queued job ``job_id`` for ``worker_id`` in the caller's transaction: a conditional UPDATE,
    so it is ours only if it was still queued (None when another worker took it first)."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "queued")
        .values(
            status="running",
            worker_id=worker_id,
            started_at=now,
            heartbeat_at=now,
            attempts=Job.attempts + 1,
            message=message,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return None
    job = session.get(Job, job_id)
    assert job is not None
    return ClaimedJob(
        id=job.id, kind=job.kind, config=dict(job.config), resume_from=job.resume_from, worker_id=worker_id
    )


class JobQueue:
    """Queue operations; each call is one short transaction of its own."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    # ------------------------------------------------------------------------------------- producers

    @staticmethod
    def check_user_limit(session: Session, user: str, kinds: Sequence[str], limit: int) -> None:
        """Refuse (ConflictError) a new job of ``user`` who already has ``limit`` jobs of ``kinds`` queued or
        running. On PostgreSQL the user's row is locked first, so two requests at once cannot both pass."""
        if session.get_bind().dialect.name in SKIP_LOCKED_DIALECTS:
            session.execute(select(User.id).where(User.username == user).with_for_update())
        count = session.scalar(
            select(func.count(Job.id)).where(
                Job.created_by == user, Job.kind.in_(kinds), Job.status.in_(("queued", "running"))
            )
        )
        if count is not None and count >= limit:
            raise ConflictError(
                f"you already have {count} generation request{'s' if count != 1 else ''} waiting or running "
                f"(at most {limit} at a time): wait for one to finish, then try again"
            )

    @staticmethod
    def enqueue(
        session: Session,
        *,
        kind: str,
        config: dict[str, Any],
        total_steps: int,
        priority: int = 0,
        brand_id: int | None = None,
        dataset_id: int | None = None,
        adapter_name: str = "",
        created_by: str = "system",
    ) -> Job:
        """Add a queued job inside the caller's transaction (the service owns it)."""
        job = Job(
            kind=kind,
            status="queued",
            priority=priority,
            config=config,
            total_steps=total_steps,
            brand_id=brand_id,
            dataset_id=dataset_id,
            adapter_name=adapter_name,
            created_by=created_by,
            loss_history=[],
            message="waiting for a worker",
        )
        session.add(job)
        session.flush()
        return job

    @staticmethod
    def request_cancel(session: Session, job: Job) -> str:
        """Cancel a queued job now, or ask its worker to stop a running one. Returns the new status."""
        if job.status == "queued":
            job.status = "cancelled"
            job.finished_at = utcnow()
            job.message = "cancelled before it started"
        elif job.status == "running":
            job.cancel_requested = True
            job.message = "cancelling…"
        else:
            raise ConflictError(f"job {job.id} is {job.status}; only queued or running jobs can be cancelled")
        return job.status

    @staticmethod
    def requeue(session: Session, job: Job) -> int:
        """Put a resumable job back in the queue from its last checkpoint; returns the resume step."""
        if job.status not in RESUMABLE:
            raise ConflictError(
                f"job {job.id} is {job.status}; only {', '.join(RESUMABLE)} jobs can be resumed"
            )
        last = session.scalar(
            select(JobCheckpoint).where(JobCheckpoint.job_id == job.id).order_by(JobCheckpoint.step.desc())
        )
        step = last.step if last is not None else 0
        job.status = "queued"
        job.resume_from = step
        job.cancel_requested = False
        job.worker_id = None
        job.finished_at = None
        job.step = step
        job.loss_history = [p for p in (job.loss_history or []) if p[0] <= step]
        job.message = f"queued to resume from step {step}" if step else "queued to start again"
        return step

    # --------------------------------------------------------------------------------------- workers

    def claim(
        self, worker_id: str, *, attempts: int = 5, kinds: Sequence[str] | None = None
    ) -> ClaimedJob | None:
        """Atomically take the next queued job of ``kinds`` (job kinds; None: any): the highest priority
        first, and within it the oldest job of the user served least recently (see :func:`next_queued`);
        None if there is none."""
        for _ in range(attempts):
            with self._sessions.begin() as session:
                candidate = next_queued(session, kinds)
                if candidate is None:
                    return None
                claimed = take(session, candidate, worker_id)
                if claimed is not None:
                    return claimed
                # another worker won the race: try the next one
        return None

    def heartbeat(self, job_id: int, worker_id: str, *, message: str | None = None) -> Control:
        """Refresh the heartbeat; tells the worker whether to cancel or whether it lost the job."""
        values: dict[str, Any] = {"heartbeat_at": utcnow()}
        if message is not None:
            values["message"] = message
        with self._sessions.begin() as session:
            result = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "running")
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:
                return Control(lost=True)
            cancel = session.scalar(select(Job.cancel_requested).where(Job.id == job_id))
            return Control(cancel=bool(cancel))

    def poll(self, job_id: int, worker_id: str) -> Control:
        """A cheap read, every training step: should the worker stop?"""
        with self._sessions() as session:
            row = session.execute(
                select(Job.status, Job.worker_id, Job.cancel_requested).where(Job.id == job_id)
            ).one_or_none()
        if row is None or row.status != "running" or row.worker_id != worker_id:
            return Control(lost=True)
        return Control(cancel=bool(row.cancel_requested))

    def progress(
        self,
        job_id: int,
        worker_id: str,
        *,
        step: int,
        loss: float | None,
        new_points: list[list[float]] | None = None,
        message: str | None = None,
    ) -> Control:
        """Record step, latest loss and new loss points (and refresh the heartbeat)."""
        with self._sessions.begin() as session:
            job = session.scalar(
                select(Job).where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "running")
            )
            if job is None:
                return Control(lost=True)
            job.step = step
            job.loss = loss
            job.heartbeat_at = utcnow()
            if new_points:
                history = [p for p in (job.loss_history or []) if p[0] < new_points[0][0]] + new_points
                if len(history) > MAX_LOSS_POINTS:
                    history = history[:: max(2, len(history) // (MAX_LOSS_POINTS // 2))][-MAX_LOSS_POINTS:]
                job.loss_history = history
            if message is not None:
                job.message = message
            return Control(cancel=bool(job.cancel_requested))

    def add_checkpoint(
        self,
        job_id: int,
        worker_id: str,
        *,
        step: int,
        file_path: str,
        sha256: str,
        state_path: str | None,
        sample_paths: list[str],
        loss: float | None,
        quality: dict[str, Any] | None = None,
    ) -> bool:
        """Record a checkpoint whose files are already written whole, with its quality-gate scores (see
        :mod:`studio.training.quality`); False if the job is not ours."""
        with self._sessions.begin() as session:
            job = session.scalar(
                select(Job).where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "running")
            )
            if job is None:
                return False
            old = session.scalar(
                select(JobCheckpoint).where(JobCheckpoint.job_id == job_id, JobCheckpoint.step == step)
            )
            if old is not None:  # written again after a resume: the new files replace the old row
                session.delete(old)
                session.flush()
            session.add(
                JobCheckpoint(
                    job_id=job_id,
                    step=step,
                    file_path=file_path,
                    sha256=sha256,
                    state_path=state_path,
                    sample_paths=sample_paths,
                    loss=loss,
                    quality=quality,
                )
            )
            job.heartbeat_at = utcnow()
            return True

    def finish(
        self,
        job_id: int,
        worker_id: str,
        status: str,
        message: str,
        *,
        result: dict[str, Any] | None = None,
        session: Session | None = None,
    ) -> bool:
        """Move our running job to a final state, with its ``result``; False if it is no longer ours. With
        ``session`` it happens inside the caller's transaction (so the job ends with what it saved)."""
        if status not in FINAL:
            raise ValueError(f"not a final status: {status}")
        values: dict[str, Any] = {
            "status": status, "message": message[:2000], "finished_at": utcnow(), "cancel_requested": False
        }  # fmt: skip
        if result is not None:
            values["result"] = result
        statement = (
            update(Job)
            .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "running")
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if session is not None:
            return session.execute(statement).rowcount == 1
        with self._sessions.begin() as own:
            return own.execute(statement).rowcount == 1

    def release(self, job_id: int, worker_id: str, message: str) -> bool:
        """A worker stopping at once hands its job back as interrupted (resumable); a generation job goes
        back to the queue (it runs again from the start, with the same seed)."""
        with self._sessions.begin() as session:
            kind = session.scalar(select(Job.kind).where(Job.id == job_id))
            values: dict[str, Any] = {"status": "interrupted", "message": message, "finished_at": utcnow()}
            if kind in RERUN_KINDS:
                values = {"status": "queued", "worker_id": None, "step": 0, "cancel_requested": False,
                          "message": "handed back: its worker was stopped; queued to run again"}  # fmt: skip
            result = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "running")
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            return result.rowcount == 1

    def hand_back(self, job_id: int, worker_id: str, why: str) -> int | None:
        """A draining worker puts its running job back in the queue, to resume from its last checkpoint on
        any worker; returns that step (None if the job is no longer ours)."""
        with self._sessions.begin() as session:
            job = session.scalar(
                select(Job).where(Job.id == job_id, Job.worker_id == worker_id, Job.status == "running")
            )
            if job is None:
                return None
            job.status = "interrupted"
            step = self.requeue(session, job)
            job.message = f"handed back: {why}; {job.message}"
            return step

    def mark_stale(self, older_than_seconds: float | None = None, now: datetime | None = None) -> list[int]:
        """Mark running jobs whose heartbeat is older than the limit as interrupted (a generation job: queued
        again, or failed after :data:`MAX_ATTEMPTS`); returns their ids."""
        limit = stale_seconds() if older_than_seconds is None else older_than_seconds
        cutoff = (now or utcnow()) - timedelta(seconds=limit)
        with self._sessions.begin() as session:
            ids = list(
                session.scalars(
                    select(Job.id).where(
                        Job.status == "running",
                        (Job.heartbeat_at.is_(None)) | (Job.heartbeat_at < cutoff),
                    )
                )
            )
            marked = []
            silent = f"its worker stopped answering (no heartbeat for {limit:g} s)"
            for job_id in ids:
                job = session.get(Job, job_id)
                assert job is not None
                if job.kind not in RERUN_KINDS:
                    values: dict[str, Any] = {
                        "status": "interrupted",
                        "finished_at": utcnow(),
                        "message": f"interrupted: {silent}; resume it to continue from the last checkpoint",
                    }
                elif job.attempts < MAX_ATTEMPTS:  # a rerun makes the same pixels: hand it back
                    values = {
                        "status": "queued", "worker_id": None, "step": 0, "cancel_requested": False,
                        "message": f"handed back: {silent}; queued to run again "
                        f"(attempt {job.attempts + 1} of {MAX_ATTEMPTS})",
                    }  # fmt: skip
                else:
                    values = {
                        "status": "failed", "finished_at": utcnow(),
                        "message": f"failed: {silent}, {job.attempts} times",
                        "result": {"error": {"type": "StudioError", "message": f"its worker died "
                                             f"{job.attempts} times running it; try a smaller request"}},
                    }  # fmt: skip
                result = session.execute(
                    update(Job)
                    .where(
                        Job.id == job_id,
                        Job.status == "running",
                        (Job.heartbeat_at.is_(None)) | (Job.heartbeat_at < cutoff),
                    )
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
                if result.rowcount == 1:
                    marked.append(job_id)
            return marked

    def checkpoint_state(self, job_id: int, step: int) -> str | None:
        """The training-state path of a job's checkpoint at ``step`` (None if there is none)."""
        with self._sessions() as session:
            ckpt = session.scalar(
                select(JobCheckpoint).where(JobCheckpoint.job_id == job_id, JobCheckpoint.step == step)
            )
            if ckpt is None:
                if session.get(Job, job_id) is None:
                    raise NotFoundError(f"job {job_id} not found")
                return None
            return ckpt.state_path
