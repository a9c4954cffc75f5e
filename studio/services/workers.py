"""Workers (admins only): the live ``studio worker`` processes, wherever they run, as ``studio workers`` and
the Training tab list them (see :mod:`studio.training.workers`)."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from studio.services.permissions import require_admin
from studio.services.views import Actor
from studio.training.workers import WorkerInfo, WorkerRegistry

__all__ = ["WORKER_HEADERS", "WorkerInfo", "WorkerService", "worker_cells"]

#: the workers list's columns (``studio workers`` and the Training tab)
WORKER_HEADERS = ("machine", "pid", "device", "kinds", "status", "job", "heartbeat")


def worker_cells(worker: WorkerInfo) -> tuple[str, ...]:
    """One worker's cells, in :data:`WORKER_HEADERS` order."""
    return (
        worker.machine,
        str(worker.pid),
        worker.device,
        ",".join(worker.kinds),
        worker.status,
        f"#{worker.job_id}" if worker.job_id is not None else "-",
        f"{worker.heartbeat_age():.0f} s ago",
    )


class WorkerService:
    """Reads the workers table."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def list_workers(self, actor: Actor) -> list[WorkerInfo]:
        """Live workers (heartbeat fresh, not stopped), by machine then start time."""
        with self._sessions() as session:
            require_admin(session, actor)
            return WorkerRegistry.live(session)
