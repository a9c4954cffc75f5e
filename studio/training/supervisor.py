"""Run the training worker as a subprocess of the web app, restarting it if it dies (no torch here).

The worker runs in its own process so that a crash, a hang or an out-of-memory in training never takes the
web app down. ``python app.py --no-worker`` skips this (run ``studio worker`` elsewhere).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

RESTART_DELAY_SECONDS = 5.0


class WorkerSupervisor:
    """Starts ``python -m studio.worker_main`` and restarts it after it exits, until :meth:`stop`."""

    def __init__(
        self, env: dict[str, str] | None = None, restart_delay: float = RESTART_DELAY_SECONDS
    ) -> None:
        self.env = dict(os.environ if env is None else env)
        self.restart_delay = restart_delay
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="worker-supervisor", daemon=True)

    def start(self) -> WorkerSupervisor:
        self._thread.start()
        return self

    def _spawn(self) -> subprocess.Popen[bytes]:
        # every kind the studio queues: training, and generation with STUDIO_GENERATION=queue
        command = [sys.executable, "-m", "studio.worker_main", "--parent-pid", str(os.getpid())]
        return subprocess.Popen(command, env=self.env)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            self.process = self._spawn()
            code = self.process.wait()
            if self._stopping.is_set():
                return
            self.restarts += 1
            print(f"training worker exited with status {code}; restarting it", file=sys.stderr, flush=True)
            self._stopping.wait(self.restart_delay)

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the worker to stop (its running job is handed back as interrupted), then wait for it."""
        self._stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()
            deadline = time.monotonic() + timeout
            while process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if process.poll() is None:
                process.kill()
