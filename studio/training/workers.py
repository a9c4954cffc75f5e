"""The workers table (:class:`~studio.db.worker_models.WorkerRow`): a worker process registers itself, beats
every few seconds with what it is doing, and marks itself stopped on a clean exit. **Live** workers are the
ones not stopped whose heartbeat is younger than the queue's stale limit (``STUDIO_JOB_STALE_SECONDS``), the
same limit after which their running job counts as interrupted. Rows of workers gone for a day are removed
when another worker starts. No torch here: the CLI and the web app read it.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from studio.db.base import utcnow
from studio.db.worker_models import WORKER_STATUSES, WorkerRow
from studio.training.queue import stale_seconds

#: rows of workers stopped or silent for this long are removed when a worker starts
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class WorkerInfo:
    """A live worker as ``studio workers`` and the Training tab show it."""

    id: str
    machine: str
    pid: int
    device: str
    kinds: tuple[str, ...]
    status: str
    job_id: int | None
    started_at: datetime
    heartbeat_at: datetime

    def heartbeat_age(self, now: datetime | None = None) -> float:
        """Seconds since the last heartbeat."""
        return max(0.0, ((now or utcnow()) - self.heartbeat_at).total_seconds())


class WorkerRegistry:
    """Worker rows; each call is one short transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def register(self, worker_id: str, *, device: str, kinds: tuple[str, ...]) -> None:
        """Add (or refresh) this process's row, and forget workers gone for a day."""
        now = utcnow()
        with self._sessions.begin() as session:
            session.execute(delete(WorkerRow).where(WorkerRow.heartbeat_at < now - FORGET_AFTER))
            row = session.get(WorkerRow, worker_id) or WorkerRow(id=worker_id)
            row.machine = socket.gethostname()
            row.pid = os.getpid()
            row.device = device[:200]
            row.kinds = ",".join(kinds)
            row.status = "idle"
            row.job_id = None
            row.started_at = now
            row.heartbeat_at = now
            row.stopped_at = None
            session.add(row)

    def beat(self, worker_id: str, *, status: str, job_id: int | None) -> None:
        """Refresh the heartbeat with what the worker is doing now."""
        if status not in WORKER_STATUSES:
            raise ValueError(f"not a worker status: {status}")
        with self._sessions.begin() as session:
            session.execute(
                update(WorkerRow)
                .where(WorkerRow.id == worker_id)
                .values(status=status, job_id=job_id, heartbeat_at=utcnow())
                .execution_options(synchronize_session=False)
            )

    def stopped(self, worker_id: str) -> None:
        """A clean exit: the worker is no longer live."""
        now = utcnow()
        with self._sessions.begin() as session:
            session.execute(
                update(WorkerRow)
                .where(WorkerRow.id == worker_id)
                .values(status="stopped", job_id=None, stopped_at=now, heartbeat_at=now)
                .execution_options(synchronize_session=False)
            )

    @staticmethod
    def live(session: Session, now: datetime | None = None) -> list[WorkerInfo]:
        """Workers not stopped whose heartbeat is fresh, by machine then start time."""
        cutoff = (now or utcnow()) - timedelta(seconds=stale_seconds())
        rows = session.scalars(
            select(WorkerRow)
            .where(WorkerRow.stopped_at.is_(None), WorkerRow.heartbeat_at >= cutoff)
            .order_by(WorkerRow.machine, WorkerRow.started_at, WorkerRow.id)
        )
        return [
            WorkerInfo(
                id=r.id,
                machine=r.machine,
                pid=r.pid,
                device=r.device,
                kinds=tuple(k for k in r.kinds.split(",") if k),
                status=r.status,
                job_id=r.job_id,
                started_at=r.started_at,
                heartbeat_at=r.heartbeat_at,
            )
            for r in rows
        ]
