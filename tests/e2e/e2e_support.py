"""End-to-end support: the Chromium set-up, a running studio's handle, login and screenshots."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from support.chromium import CHROMIUM, CHROMIUM_ARGS, sign_in  # noqa: F401 (the e2e conftest's launch)

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "tests" / "e2e" / "artifacts"
ADMIN_PASSWORD = "admin-e2e-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningStudio:
    """A studio process: its URL, data folder and environment (for the CLI against the same data)."""

    url: str
    home: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run the real ``studio`` CLI against this studio's data folder."""
        return subprocess.run(
            [sys.executable, "-m", "studio.cli", *args],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )


def login(browser: object, url: str, username: str, password: str):  # noqa: ANN201
    """A new page signed in through the studio's login form."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})  # type: ignore[attr-defined]
    return sign_in(context.new_page(), url, username, password)


def screenshot(page: object, name: str) -> Path:
    """Save a full-page screenshot under tests/e2e/artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


def close_toasts(page: object) -> None:
    """Close every toast (they pile up over the page's top right corner)."""
    for close in page.locator("[data-testid='toast-close']").all():  # type: ignore[attr-defined]
        with contextlib.suppress(Exception):  # a toast that closed itself meanwhile
            close.click(timeout=2000)


def assert_no_error_state(page: object, where: str) -> None:
    """No component shows Gradio's error state, and no error toast is up."""
    pills = page.locator("[data-testid='status-tracker'] .error, .wrap .error").filter(visible=True)  # type: ignore[attr-defined]
    if pills.count():
        where_shown = pills.evaluate_all(
            "(els) => els.map((e) => (e.closest('.block')?.id || '') + ' ' + e.outerHTML.slice(0, 200))"
        )
        raise AssertionError(f"{where}: a component turned into an error: {where_shown}")
    toasts = page.locator("[data-testid='toast-body'].error").filter(visible=True)  # type: ignore[attr-defined]
    assert toasts.count() == 0, f"{where}: an error toast: {toasts.all_inner_texts()}"
