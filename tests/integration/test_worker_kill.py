"""kill -9 of a real worker subprocess mid-training, then a restart: the job is interrupted, no half-written
LoRA file exists, and resuming finishes it from the last checkpoint."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from engine_fixtures import fast_cpu, sd1_dir  # noqa: F401
from helpers import REPO_ROOT
from test_training_worker import FAST, tdataset, tservices  # noqa: F401

from studio.services.views import SYSTEM
from studio.storage import sha256_file, validate_safetensors


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _worker(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "studio.training.worker", "--poll", "0.2", *args]
    with open(log, "ab") as out:  # a file, not a pipe: a full pipe would block the worker
        return subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)


def _worker_env(services: Any, base_model: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
    env.update(
        STUDIO_HOME=str(services.settings.home),
        STUDIO_BASE_MODEL=str(base_model),
        HF_HUB_OFFLINE="1",
        PYTHONPATH=str(REPO_ROOT),
        OMP_NUM_THREADS="1",  # tiny models on a busy 2-core box: more threads are much slower
        **extra,
    )
    return env


@pytest.mark.slow  # two worker processes each import torch + diffusers: minutes on a busy 2-core box
def test_kill_9_mid_step_then_restart_and_resume(tservices: Any, tdataset: int, sd1_dir: Path) -> None:  # noqa: F811
    training = tservices.training
    job = training.queue_training(
        SYSTEM, "lagoon", "lagoon-style", tdataset, steps=30, checkpoint_every=3, batch_size=1, **FAST
    )
    env = _worker_env(tservices, sd1_dir, STUDIO_JOB_STALE_SECONDS="2")
    log = Path(os.environ.get("STUDIO_TEST_WORKER_LOG") or tservices.settings.home / "worker.log")
    first = _worker(env, log)
    try:

        def has_a_checkpoint() -> bool:
            # Kill as soon as the first checkpoint is recorded (27 steps are still to go). Waiting for the
            # progress row to pass it as well was too slow on an idle machine: progress is flushed every
            # few seconds, and the whole run took 6 s.
            view = training.get_job(SYSTEM, job.id)
            assert view.status in ("queued", "running"), view.message
            return bool(view.checkpoints)

        _wait(has_a_checkpoint, 180, "a checkpoint")
        os.kill(first.pid, signal.SIGKILL)  # mid-step: no chance to clean up
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    killed = training.get_job(SYSTEM, job.id)
    assert killed.status == "running"  # nobody knows yet
    last = killed.checkpoints[-1].step

    # no half-written LoRA: every whole-looking file is a valid safetensors file matching its row
    home = tservices.settings.home
    for ckpt in killed.checkpoints:
        validate_safetensors(ckpt.file_path)
        assert sha256_file(ckpt.file_path) == ckpt.sha256
    for path in (home / "training").rglob("*.safetensors"):
        if not any(part.startswith(".") for part in path.relative_to(home).parts):
            validate_safetensors(path)

    time.sleep(2.2)  # the dead worker's heartbeat goes stale
    second = _worker(env, log)
    try:
        _wait(lambda: training.get_job(SYSTEM, job.id).status == "interrupted", 120, "interrupted")
        interrupted = training.get_job(SYSTEM, job.id)
        assert "heartbeat" in interrupted.message
        leftovers = [p for p in (home / "training").rglob("*") if p.name.startswith(".")]
        assert leftovers == []  # the dead worker's temporary files are gone with it
        resumed = training.resume(SYSTEM, job.id)
        assert resumed.resume_from == last

        def finished() -> bool:
            status = training.get_job(SYSTEM, job.id).status
            assert status in ("queued", "running", "succeeded"), training.get_job(SYSTEM, job.id).message
            return status == "succeeded"

        _wait(finished, 180, "the resumed job to finish")
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=30)
        except subprocess.TimeoutExpired:
            second.kill()
    done = training.get_job(SYSTEM, job.id)
    assert done.step == 30 and {c.step for c in done.checkpoints} == set(range(3, 31, 3))
    for ckpt in done.checkpoints:
        validate_safetensors(ckpt.file_path)
    assert not [p for p in (home / "training").rglob("*") if p.name.startswith(".")]
    assert training.publish(SYSTEM, job.id).step == 30


def test_a_worker_whose_web_app_is_gone_stops_mid_job_and_hands_it_back(
    tservices: Any,  # noqa: F811
    tdataset: int,  # noqa: F811
    sd1_dir: Path,  # noqa: F811
) -> None:
    """The web app's worker runs with ``--parent-pid``: when that process dies (kill -9, or a plain SIGTERM
    that skips the app's clean-up), the worker stops its running job too instead of training on alone."""
    training = tservices.training
    job = training.queue_training(
        SYSTEM, "lagoon", "lagoon-style", tdataset, steps=5000, checkpoint_every=1000, batch_size=1, **FAST
    )
    web_app = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    log = tservices.settings.home / "worker-parent.log"
    worker = _worker(_worker_env(tservices, sd1_dir), log, "--parent-pid", str(web_app.pid))
    try:
        _wait(lambda: training.get_job(SYSTEM, job.id).step >= 1, 180, "the job to be training")
        web_app.kill()
        web_app.wait(timeout=30)
        worker.wait(timeout=60)
    finally:
        for process in (web_app, worker):
            if process.poll() is None:
                process.kill()
    stopped = training.get_job(SYSTEM, job.id)
    assert stopped.status == "interrupted", (stopped.status, stopped.message, log.read_text()[-2000:])
    assert 1 <= stopped.step < 5000
    assert "the web app" in log.read_text()
