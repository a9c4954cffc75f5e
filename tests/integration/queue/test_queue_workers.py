"""Operations (issue 20, item 5): the workers table, ``studio workers``, the Training tab's list, and a real
worker process that drains on SIGTERM (its running job goes back to the queue, then it exits 0)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from engine_fixtures import fast_cpu, sd1_dir  # noqa: F401
from helpers import REPO_ROOT
from live_server import (
    DEMO_PASSWORD,
    demo_server_fixture,  # noqa: F401 (the demo_server fixture)
)
from sqlalchemy import update
from test_training_worker import FAST, tdataset, tservices  # noqa: F401
from test_worker_kill import _wait, _worker, _worker_env

from studio.db.base import utcnow
from studio.db.worker_models import WorkerRow
from studio.errors import PermissionDeniedError
from studio.services.views import SYSTEM, Actor
from studio.training.queue import JobQueue
from studio.training.workers import WorkerRegistry

pytestmark = pytest.mark.both_databases


def test_live_workers_are_listed_and_stopped_or_silent_ones_are_not(services: Any) -> None:
    registry = WorkerRegistry(services.sessions)
    registry.register("gpu-a:11:aaaaaa", device="cuda:0 NVIDIA H100", kinds=("generate", "train"))
    registry.register("gpu-b:22:bbbbbb", device="cpu", kinds=("train",))
    registry.register("gpu-c:33:cccccc", device="cpu", kinds=("train",))
    with services.sessions.begin() as session:
        JobQueue.enqueue(session, kind="lora", config={}, total_steps=1)
    job_id = JobQueue(services.sessions).claim("gpu-a:11:aaaaaa").id
    registry.beat("gpu-a:11:aaaaaa", status="busy", job_id=job_id)
    registry.stopped("gpu-b:22:bbbbbb")
    with services.sessions.begin() as session:  # gpu-c went silent two minutes ago (killed, machine off)
        session.execute(
            update(WorkerRow)
            .where(WorkerRow.id == "gpu-c:33:cccccc")
            .values(heartbeat_at=utcnow() - timedelta(minutes=2))
        )
    live = services.workers.list_workers(SYSTEM)
    assert [w.id for w in live] == ["gpu-a:11:aaaaaa"]
    (busy,) = live
    assert (busy.device, busy.kinds, busy.status, busy.job_id) == (
        "cuda:0 NVIDIA H100", ("generate", "train"), "busy", job_id,
    )  # fmt: skip
    assert busy.heartbeat_age() < 30
    services.users.add_user(SYSTEM, "mia", ["marketer"], "correct horse battery staple")
    with pytest.raises(PermissionDeniedError):
        services.workers.list_workers(Actor.user("mia"))


def test_studio_workers_prints_the_live_workers(services: Any, cli_env: dict[str, str]) -> None:
    registry = WorkerRegistry(services.sessions)
    studio = [sys.executable, "-m", "studio.cli", "workers"]
    empty = subprocess.run(studio, env=cli_env, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert empty.returncode == 0, empty.stderr
    assert "no live workers" in empty.stdout
    registry.register("render-1:4242:abcdef", device="cuda:0 NVIDIA L4", kinds=("train",))
    shown = subprocess.run(studio, env=cli_env, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert shown.returncode == 0, shown.stderr
    header, line = shown.stdout.splitlines()
    assert header.split() == ["machine", "pid", "device", "kinds", "status", "job", "heartbeat"]
    assert (
        line.split()[1:5] == [str(os.getpid()), "cuda:0", "NVIDIA", "L4"]
        and " idle " in line
        and "s ago" in line
    )
    as_json = subprocess.run(
        [*studio, "--json"], env=cli_env, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )
    (row,) = json.loads(as_json.stdout)
    assert (row["id"], row["pid"], row["kinds"], row["job_id"]) == (
        "render-1:4242:abcdef",
        os.getpid(),
        ["train"],
        None,
    )


@pytest.mark.sqlite_only  # the same service call as above; one real server is enough
def test_the_training_tab_lists_the_live_workers_for_admins_only(services: Any, demo_server: str) -> None:
    from gradio_client import Client

    ada = Client(demo_server, auth=("ada", DEMO_PASSWORD), verbose=False)
    table, note = ada.predict(api_name="/training_workers")
    assert table["data"] == [] and "No live worker" in note
    WorkerRegistry(services.sessions).register(
        "gpu-7:99:abcdef", device="cuda:0 NVIDIA A10", kinds=("train",)
    )
    table, note = ada.predict(api_name="/training_workers")
    assert table["headers"] == ["machine", "pid", "device", "kinds", "status", "job", "heartbeat"]
    (row,) = table["data"]
    assert row[2:6] == ["cuda:0 NVIDIA A10", "train", "idle", "-"] and note == "1 live worker, 0 busy"
    mia = Client(demo_server, auth=("mia", DEMO_PASSWORD), verbose=False)
    with pytest.raises(Exception, match="admin"):
        mia.predict(api_name="/training_workers")


def test_sigterm_drains_a_real_worker_its_job_back_in_the_queue(
    tservices: Any,  # noqa: F811
    tdataset: int,  # noqa: F811
    sd1_dir: Path,  # noqa: F811
) -> None:
    """A worker busy training gets SIGTERM: it hands the job back (queued, to resume from its last
    checkpoint on any worker), leaves the live list and exits 0."""
    training = tservices.training
    job = training.queue_training(
        SYSTEM, "lagoon", "lagoon-style", tdataset, steps=5000, checkpoint_every=2, batch_size=1, **FAST
    )
    env = _worker_env(tservices, sd1_dir, STUDIO_DATABASE_URL=tservices.settings.database_url)
    log = tservices.settings.home / "worker-drain.log"
    worker = _worker(env, log)
    try:
        _wait(lambda: bool(training.get_job(SYSTEM, job.id).checkpoints), 180, "a checkpoint")
        (listed,) = tservices.workers.list_workers(SYSTEM)
        assert (listed.pid, listed.job_id, listed.status) == (worker.pid, job.id, "busy")
        assert listed.device == "cpu" and listed.kinds == ("train",)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, log.read_text()[-2000:]
    finally:
        if worker.poll() is None:
            worker.kill()
    back = training.get_job(SYSTEM, job.id)
    assert back.status == "queued", (back.status, back.message, log.read_text()[-2000:])
    assert back.message.startswith("handed back: the worker was stopped (drained)")
    assert back.resume_from == back.checkpoints[-1].step >= 2 and back.step < 5000
    assert tservices.workers.list_workers(SYSTEM) == []
    assert "drains (SIGTERM)" in log.read_text()


def test_sigterm_stops_an_idle_worker_at_once(services: Any, sd1_dir: Path) -> None:  # noqa: F811
    env = _worker_env(services, sd1_dir, STUDIO_DATABASE_URL=services.settings.database_url)
    log = services.settings.home / "worker-idle.log"
    worker = _worker(env, log)
    try:
        _wait(lambda: bool(services.workers.list_workers(SYSTEM)), 120, "the worker to register")
        assert services.workers.list_workers(SYSTEM)[0].status == "idle"
        os.kill(worker.pid, signal.SIGTERM)
        assert worker.wait(timeout=30) == 0, log.read_text()[-2000:]
    finally:
        if worker.poll() is None:
            worker.kill()
    assert services.workers.list_workers(SYSTEM) == []
