"""A batch's companions: after a worker claims a job it may claim more queued jobs that can run with it in
one call (a generation worker's batch, :mod:`studio.engine.batching`).

Which jobs fit is the caller's test on each job's id and config. Among those, the claim goes round the
users, the one served least recently first, one job each per round (the fair share of
:func:`~studio.training.queue.next_queued`): a user with 64 compatible requests queued fills a batch only
when nobody else waits. On
PostgreSQL the candidates are read ``FOR UPDATE SKIP LOCKED``; every claim is the conditional UPDATE of
:func:`~studio.training.queue.take`, so no job is claimed twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from studio.db.training_models import Job
from studio.training.queue import SKIP_LOCKED_DIALECTS, ClaimedJob, last_served, take

#: how many of the oldest queued jobs are looked at for companions
SCAN = 64


def claim_companions(
    sessions: sessionmaker[Session],
    worker_id: str,
    first: ClaimedJob,
    fits: Callable[[int, dict[str, Any]], bool],
    limit: int,
    scan: int = SCAN,
) -> list[ClaimedJob]:
    """Claim up to ``limit`` more queued jobs of ``first``'s kind that ``fits(job_id, config)``, in
    round-robin order between users (see the module's docstring). One transaction; [] when none fits."""
    if limit <= 0:
        return []
    with sessions.begin() as session:
        query = (
            select(Job.id, Job.created_by, Job.config)
            .where(Job.status == "queued", Job.kind == first.kind)
            .order_by(Job.priority.desc(), Job.id)
            .limit(scan)
        )
        if session.get_bind().dialect.name in SKIP_LOCKED_DIALECTS:
            query = query.with_for_update(skip_locked=True)
        by_user: dict[str, list[int]] = {}
        for job_id, user, config in session.execute(query).tuples():
            if fits(job_id, dict(config or {})):
                by_user.setdefault(user, []).append(job_id)
        served = last_served(session, list(by_user), (first.kind,))
        turns = sorted(by_user, key=lambda user: (served[user], by_user[user][0]))
        claimed: list[ClaimedJob] = []
        while len(claimed) < limit and any(by_user.values()):
            for user in turns:
                if by_user[user] and len(claimed) < limit:
                    job = take(
                        session, by_user[user].pop(0), worker_id, message=f"batched with job {first.id}"
                    )
                    if job is not None:
                        claimed.append(job)
        return claimed
