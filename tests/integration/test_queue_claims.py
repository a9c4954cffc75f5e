"""The job queue's claim on SQLite and on PostgreSQL: several threads and processes claiming from one queue
never get the same job; on PostgreSQL the claim is ``SELECT .. FOR UPDATE SKIP LOCKED``, so a job another
transaction holds is passed over, not waited for."""

from __future__ import annotations

import concurrent.futures
import subprocess
import sys
import threading
from typing import Any

from live_server import REPO_ROOT
from sqlalchemy import event, select

from studio.db.training_models import Job
from studio.training.queue import JobQueue

JOBS = 60
THREADS = 6
PROCESSES = 2

CLAIMER = """
import sys
from studio.db.engine import make_engine, make_session_factory
from studio.training.queue import JobQueue

engine = make_engine(sys.argv[1])
queue = JobQueue(make_session_factory(engine))
while (job := queue.claim(sys.argv[2], attempts=50)) is not None:
    print(job.id, flush=True)
engine.dispose()
"""


def enqueue(services: Any, count: int) -> list[int]:
    with services.sessions.begin() as session:
        jobs = [JobQueue.enqueue(session, kind="train", config={"n": i}, total_steps=1) for i in range(count)]
        return [job.id for job in jobs]


def test_threads_and_processes_never_claim_the_same_job(services: Any) -> None:
    ids = enqueue(services, JOBS)
    statements: list[str] = []
    event.listen(services.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    start = threading.Barrier(THREADS)

    def claim_all(worker: str) -> list[int]:
        queue = JobQueue(services.sessions)
        start.wait()
        got = []
        while (job := queue.claim(worker, attempts=50)) is not None:
            got.append(job.id)
        return got

    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, services.settings.database_url, f"process-{n}"],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        for n in range(PROCESSES)
    ]
    with concurrent.futures.ThreadPoolExecutor(THREADS) as pool:
        by_thread = list(pool.map(claim_all, [f"thread-{n}" for n in range(THREADS)]))
    by_process = []
    for process in processes:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        by_process.append([int(line) for line in out.split()])
    claimed = [job_id for got in by_thread + by_process for job_id in got]
    assert sorted(claimed) == sorted(ids), "a job was claimed twice or not at all"
    with services.sessions() as session:
        rows = session.execute(select(Job.id, Job.worker_id, Job.attempts, Job.status)).all()
    owner = {job_id: worker for worker, got in zip(
        [f"thread-{n}" for n in range(THREADS)] + [f"process-{n}" for n in range(PROCESSES)],
        by_thread + by_process, strict=True) for job_id in got}  # fmt: skip
    assert all(r.status == "running" and r.attempts == 1 and r.worker_id == owner[r.id] for r in rows)
    claims = [s for s in statements if "FROM jobs" in s and "ORDER BY" in s]
    if services.engine.dialect.name == "postgresql":
        assert claims and all("FOR UPDATE SKIP LOCKED" in s for s in claims)


def test_a_job_locked_by_another_transaction_is_skipped_not_waited_for(services: Any) -> None:
    """PostgreSQL: while one transaction holds the first queued job's row, a claim takes the next one at
    once (SQLite has one writer at a time: there the claim just takes the first)."""
    first, second = enqueue(services, 2)
    if services.engine.dialect.name != "postgresql":
        assert JobQueue(services.sessions).claim("w").id == first
        return
    claimed: list[int | None] = []
    with services.sessions.begin() as holder:
        holder.execute(select(Job).where(Job.id == first).with_for_update())
        worker = threading.Thread(target=lambda: claimed.append(JobQueue(services.sessions).claim("w").id))
        worker.start()
        worker.join(timeout=10)
        waited = worker.is_alive()
    worker.join()
    assert not waited, "the claim waited for the locked row instead of skipping it"
    assert claimed == [second]
