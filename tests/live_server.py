"""Real web servers for tests: ``python app.py`` in its own process on a free 127.0.0.1 port with a given data
folder (bounded waits), or the UI built in this process exactly as ``app.py`` builds it (:func:`serve_ui`, and
the ``server`` fixture over a folder's ``studio`` services)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A port nothing listens on now (127.0.0.1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def app_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a studio process: no inherited STUDIO_/GRADIO_ settings, offline hub."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STUDIO_", "GRADIO_"))}
    env.update(STUDIO_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", **extra)
    return env


@dataclass
class LiveApp:
    """A running ``python app.py``: its URL, data folder, log file and process."""

    url: str
    home: Path
    log: Path
    process: subprocess.Popen[bytes]

    def stop(self, timeout: float = 20) -> None:
        """Terminate (then kill) the process."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=timeout)

    def kill9(self) -> None:
        """SIGKILL, as a crash or an OOM killer would."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=20)


def start_app(
    home: Path,
    *,
    admin_password: str,
    argv: list[str] | None = None,
    log_name: str = "app.log",
    wait_s: float = 180,
    **extra: str,
) -> LiveApp:
    """Run ``python app.py [argv]`` against ``home`` and wait until it answers on 127.0.0.1."""
    port = free_port()
    env = app_env(home, STUDIO_PORT=str(port), STUDIO_ADMIN_PASSWORD=admin_password, **extra)
    log = home / log_name
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "app.py"), *(argv or [])],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=out,
        )
    url = f"http://127.0.0.1:{port}"
    app = LiveApp(url=url, home=home, log=log, process=process)
    deadline = time.monotonic() + wait_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url + "/", timeout=2) as response:
                if response.status == 200:
                    return app
        except OSError:
            pass
        if time.monotonic() > deadline:
            app.stop()
            raise RuntimeError(f"app.py did not answer within {wait_s:.0f} s:\n{log.read_text()[-4000:]}")
        time.sleep(0.5)


@contextlib.contextmanager
def serve_ui(services: Any) -> Iterator[str]:
    """The studio UI built from ``services`` as ``app.py`` builds it (``build_ui`` + ``launch_options``),
    launched in this process on a free 127.0.0.1 port; yields its URL and closes it afterwards."""
    from studio.ui.app import build_ui, launch_options

    settings = dataclasses.replace(services.settings, host="127.0.0.1", port=free_port())
    services = dataclasses.replace(services, settings=settings)
    demo = build_ui(services)
    demo.queue(default_concurrency_limit=1)
    _, url, _ = demo.launch(**launch_options(services), prevent_thread_lock=True, quiet=True)
    try:
        yield url
    finally:
        demo.close()


@pytest.fixture
def server(studio: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The URL of the UI over the ``studio`` fixture's services (import it into a folder's conftest)."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    with serve_ui(studio) as url:
        yield url


#: The password of the ``demo_server`` fixture's users.
DEMO_PASSWORD = "a-long-password-1"


@pytest.fixture(name="demo_server")
def demo_server_fixture(services: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``demo_server``: the URL of the UI over ``services`` with the demo brands synced and users ada (admin)
    and mia (marketer, member of lagoon), both with :data:`DEMO_PASSWORD` (import it into a test module)."""
    from helpers import DEMO_BRANDS

    from studio.services.views import SYSTEM

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    services.brands.sync(SYSTEM, DEMO_BRANDS)
    services.users.add_user(SYSTEM, "ada", ["admin"], DEMO_PASSWORD)
    services.users.add_user(SYSTEM, "mia", ["marketer"], DEMO_PASSWORD)
    services.brands.grant(SYSTEM, "lagoon", "mia")
    with serve_ui(services) as url:
        yield url
