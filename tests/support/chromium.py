"""Debian's Chromium for the browser tests: where it is and the flags every launch uses (never
``playwright install``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("STUDIO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def sign_in(page: Any, url: str, username: str, password: str) -> Any:
    """Open the studio at ``url`` in ``page`` and sign in through its login form; returns the page once it
    says who is signed in."""
    page.goto(url.rstrip("/") + "/")
    page.get_by_label("username").fill(username)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login", exact=True).click()
    page.get_by_text(f"Signed in as {username}").wait_for(timeout=30_000)
    return page


@contextlib.contextmanager
def signed_in_page(
    url: str, username: str, password: str, *, size: tuple[int, int] = (1366, 900), last: Path | None = None
) -> Iterator[Any]:
    """A fresh Chromium with one page of ``size`` signed in as ``username``; with ``last``, a full-page
    screenshot is saved there when the block ends (what the page showed when a test failed)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": size[0], "height": size[1]}).new_page()
        try:
            yield sign_in(page, url, username, password)
        finally:
            if last is not None:
                with contextlib.suppress(Exception):
                    last.parent.mkdir(parents=True, exist_ok=True)
                    page.screenshot(path=str(last), full_page=True)
            browser.close()
