"""Workers that claim jobs from the queue (migration 0011): one row per ``studio worker`` process.

A worker writes its row when it starts and refreshes ``heartbeat_at`` every few seconds, busy or idle, with
what it is doing (``status``: idle, busy, draining) and the job it runs. A clean exit sets ``stopped_at``; a
worker whose heartbeat is older than the queue's stale limit is dead (killed, machine gone). ``studio
workers`` and the Training tab list the live ones.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from studio.db.base import Base, UTCDateTime, utcnow

WORKER_STATUSES = ("idle", "busy", "draining", "stopped")


class WorkerRow(Base):
    """One worker process: where it runs, on which device, what it does now and when it last said so."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)  # the queue's worker id, host:pid:random
    machine: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    device: Mapped[str] = mapped_column(String(200), default="")
    kinds: Mapped[str] = mapped_column(String(100), default="")  # job kinds it claims, comma separated
    status: Mapped[str] = mapped_column(String(16), default="idle")
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True, index=True
    )
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
