"""The web app's training worker runs as a subprocess: killing it (even with kill -9) leaves the app's
process alone, and the supervisor starts a new worker."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from helpers import REPO_ROOT

from studio.training.supervisor import WorkerSupervisor


def test_a_dead_worker_is_restarted_and_the_parent_lives_on(services: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
    env.update(STUDIO_HOME=str(services.settings.home), PYTHONPATH=str(REPO_ROOT), HF_HUB_OFFLINE="1")
    supervisor = WorkerSupervisor(env=env, restart_delay=0.1).start()
    try:
        deadline = time.monotonic() + 60
        while supervisor.process is None and time.monotonic() < deadline:
            time.sleep(0.05)
        first = supervisor.process
        assert first is not None
        os.kill(first.pid, signal.SIGKILL)
        while (supervisor.process is first or supervisor.process is None) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert supervisor.process is not first and supervisor.restarts == 1
        assert supervisor.process.poll() is None  # the new worker runs
    finally:
        supervisor.stop(timeout=20)
    assert supervisor.process.poll() is not None  # stopped with the app
