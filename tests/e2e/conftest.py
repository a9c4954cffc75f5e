"""End-to-end fixtures: a real ``python app.py`` on 127.0.0.1 with a fresh data folder, and real Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import ADMIN_PASSWORD, CHROMIUM, CHROMIUM_ARGS, REPO_ROOT, RunningStudio, free_port


@pytest.fixture(scope="module")
def studio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStudio]:
    """``python app.py`` with a fresh STUDIO_HOME, waiting until it answers."""
    home = tmp_path_factory.mktemp("studio-home")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STUDIO_", "GRADIO_"))}
    env.update(
        STUDIO_HOME=str(home),
        STUDIO_PORT=str(port),
        STUDIO_ADMIN_PASSWORD=ADMIN_PASSWORD,
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
    )
    log = home / "app.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(REPO_ROOT / "app.py")], cwd=REPO_ROOT, env=env, stdout=out, stderr=out
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        if process.poll() is not None:
            pytest.fail(f"app.py exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"app.py did not answer within 120 s:\n{log.read_text()}")
        time.sleep(0.5)
    try:
        yield RunningStudio(url=url, home=home, env=env, process=process, log=log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's Chromium driven by Playwright (never a downloaded browser)."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install it with 'apt-get install chromium'")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
