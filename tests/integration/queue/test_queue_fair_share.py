"""Fair share (issue 20, item 4): claims go round the users with jobs waiting (least recently served first),
so one user's long batch does not hold everyone else up; a user may have at most N jobs queued or running."""

from __future__ import annotations

from typing import Any

import pytest

from studio.errors import ConflictError
from studio.training.queue import JobQueue

pytestmark = pytest.mark.both_databases


def enqueue(services: Any, user: str, count: int, *, kind: str = "generate", priority: int = 0) -> list[int]:
    with services.sessions.begin() as session:
        return [
            JobQueue.enqueue(
                session, kind=kind, config={}, total_steps=1, created_by=user, priority=priority
            ).id
            for _ in range(count)
        ]


def claim_all(queue: JobQueue, **kwargs: Any) -> list[int]:
    claimed = []
    while (job := queue.claim("w", **kwargs)) is not None:
        claimed.append(job.id)
    return claimed


def owners(services: Any, ids: list[int]) -> list[str]:
    from studio.db.training_models import Job

    with services.sessions() as session:
        return [session.get(Job, job_id).created_by for job_id in ids]


def test_claims_go_round_the_users_least_recently_served_first(services: Any) -> None:
    heavy = enqueue(services, "heavy", 8)
    light = {user: enqueue(services, user, 2) for user in ("bea", "cal")}
    claimed = claim_all(JobQueue(services.sessions))
    assert sorted(claimed) == sorted(heavy + light["bea"] + light["cal"])
    assert owners(services, claimed) == [
        "heavy", "bea", "cal", "heavy", "bea", "cal", "heavy", "heavy", "heavy", "heavy", "heavy", "heavy",
    ]  # fmt: skip
    assert [i for i in claimed if i in heavy] == heavy  # each user's own jobs in the order they were queued


def test_a_user_who_was_just_served_waits_behind_one_who_was_not(services: Any) -> None:
    queue = JobQueue(services.sessions)
    (first,) = enqueue(services, "ann", 1)
    assert queue.claim("w").id == first  # ann was served just now
    anns = enqueue(services, "ann", 2)
    (bens,) = enqueue(services, "ben", 1)  # queued after ann's, yet first: ben was never served
    assert claim_all(queue) == [bens, *anns]


def test_priority_comes_before_the_round_robin_and_kinds_filter_the_claim(services: Any) -> None:
    queue = JobQueue(services.sessions)
    (training,) = enqueue(services, "ada", 1, kind="lora")
    generate = enqueue(services, "bob", 2)
    (urgent,) = enqueue(services, "bob", 1, priority=5)
    assert claim_all(queue, kinds=("generate",)) == [urgent, *generate]
    assert queue.claim("w", kinds=("generate",)) is None
    assert queue.claim("w", kinds=("lora",)).id == training


def test_a_user_may_have_at_most_the_limit_queued_or_running(services: Any) -> None:
    queue = JobQueue(services.sessions)
    first, _, _ = enqueue(services, "mia", 3)
    assert queue.claim("w").id == first  # running still counts
    with services.sessions.begin() as session:
        JobQueue.check_user_limit(session, "mia", ("generate",), 4)  # 3 of 4: one more may come
    enqueue(services, "mia", 1)
    with pytest.raises(
        ConflictError, match=r"you already have 4 generation requests .* \(at most 4 at a time\)"
    ):
        with services.sessions.begin() as session:
            JobQueue.check_user_limit(session, "mia", ("generate",), 4)
    with services.sessions.begin() as session:  # others are not counted against her, nor other kinds
        JobQueue.check_user_limit(session, "noa", ("generate",), 4)
        JobQueue.check_user_limit(session, "mia", ("lora",), 1)
    assert queue.finish(first, "w", "succeeded", "done")
    with services.sessions.begin() as session:  # a finished request frees its place
        JobQueue.check_user_limit(session, "mia", ("generate",), 4)


def test_a_batch_takes_its_companions_in_turn_between_users(services: Any) -> None:
    """A worker's batch companions (studio.training.queue_companions): only jobs that fit, one per user per
    round, the least recently served user first, each claimed once."""
    from studio.training.queue_companions import claim_companions

    heavy = enqueue(services, "heavy", 6)
    light = enqueue(services, "light", 2)
    other_kind = enqueue(services, "light", 1, kind="train")
    queue = JobQueue(services.sessions)
    first = queue.claim("w1", kinds=("generate",))
    assert first is not None and first.id == heavy[0]
    unfit = heavy[3]
    companions = claim_companions(services.sessions, "w1", first, lambda job_id, config: job_id != unfit, 4)
    assert [job.id for job in companions] == [light[0], heavy[1], light[1], heavy[2]]
    again = claim_companions(services.sessions, "w2", first, lambda job_id, config: job_id != unfit, 8)
    assert sorted(job.id for job in again) == heavy[4:]  # what is left; nothing claimed twice
    assert claim_all(queue, kinds=("generate",)) == [unfit]
    assert claim_companions(services.sessions, "w1", first, lambda job_id, config: True, 0) == []
    assert other_kind[0] not in [job.id for job in companions + again]
