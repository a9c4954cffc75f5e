"""Generation through the queue across processes (issue 20, item 2): a real ``python app.py`` with
``STUDIO_GENERATION=queue`` and ``--no-worker``, two ``studio worker --kinds generate`` processes, a
marketer's requests through ``/generate_api``. One worker is killed with SIGKILL in the middle of a job: the
job goes back to the queue once its heartbeat is stale, the other worker makes it again with the same seed,
and the caller gets the pixels its recipe makes inline (regenerate). Nothing is lost or saved twice, and the
web process never loads a pipeline."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from support.queue_cluster import (
    LOADS_A_PIPELINE,
    PASSWORD,
    Cluster,
    add_acme,
    queue_cluster,
    running_jobs,
    wait_for,
    worker_holding,
)

from studio.db.generation_models import Generation
from studio.db.training_models import Job
from studio.services.views import Actor

pytestmark = pytest.mark.both_databases


@pytest.fixture
def cluster(services: Any, sd1_dir: Path) -> Iterator[Cluster]:
    """The web app in queue mode (no worker of its own) and two generation workers."""
    if services.engine.dialect.name == "sqlite":  # 45 s of processes: once, on the database machines share
        pytest.skip("run on PostgreSQL (the in-process queue tests run on SQLite too)")
    add_acme(services, sd1_dir)
    with queue_cluster(services, sd1_dir) as started:
        yield started


def test_a_worker_killed_mid_job_loses_nothing_and_the_rerun_has_the_same_pixels(
    services: Any, cluster: Cluster
) -> None:
    from gradio_client import Client

    app = cluster.app
    asked = {"brand": "acme", "prompt": "a red circle", "seed": 77, "steps": 30, "batch_size": 2}
    answers: list[Any] = []
    client = Client(app.url, auth=("mia", PASSWORD), verbose=False)
    call = threading.Thread(target=lambda: answers.append(client.predict(**asked, api_name="/generate_api")))
    call.start()

    wait_for(lambda: running_jobs(services), 120, "a worker to be generating")
    job = running_jobs(services)[0]
    victim = worker_holding(cluster, job)
    os.kill(victim.pid, signal.SIGKILL)  # mid-job: no chance to hand it back
    victim.wait(timeout=30)
    call.join(timeout=180)
    assert answers, cluster.logs()
    (answer,) = answers
    with services.sessions() as session:
        done = session.get(Job, job.id)
        assert done.status == "succeeded" and done.attempts >= 2, done.message  # (3 on a starved box)
        assert done.worker_id != job.worker_id
        assert session.scalar(select(func.count(Generation.id))) == 1  # saved once
    for image in answer["images"]:  # each image again from its recipe, inline in this process: same pixels
        again = services.generation.regenerate(Actor.user("mia"), image["id"])
        assert [i.pixel_sha256 for i in again.images] == [image["pixel_sha256"]]
    assert [i["seed"] for i in answer["images"]] == [77, 78]
    assert LOADS_A_PIPELINE not in app.log.read_text()  # the web process loaded no model
    assert any(LOADS_A_PIPELINE in p.read_text() for p in app.home.glob("worker-*.log"))
