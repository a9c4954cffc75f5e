"""The Review and Gallery tabs in real Chromium against the in-process server: a reviewer approves from the
keyboard, rejects with a comment, and finds the decision in the gallery's history."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from review_support import MIA, PASSWORD
from sqlalchemy import text
from support.chromium import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ARTIFACTS = Path(__file__).resolve().parents[2] / "e2e" / "artifacts"


@pytest.fixture
def page(server: str) -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        tab = context.new_page()
        tab.goto(server.rstrip("/") + "/")
        tab.get_by_label("username").fill("rex")
        tab.get_by_label("password").fill(PASSWORD)
        tab.get_by_role("button", name="Login", exact=True).click()
        tab.get_by_text("Signed in as rex").wait_for(timeout=30_000)
        try:
            yield tab
        finally:
            browser.close()


def test_reviewer_decides_from_the_keyboard(studio: Any, make_images: Any, page: Any) -> None:
    first, second = make_images(MIA, count=2)
    with studio.engine.begin() as conn:  # same palette flag: the queue is then oldest first
        conn.execute(text("update images set palette_flag = 0"))
    page.get_by_role("tab", name="Review").click()
    page.get_by_role("button", name="Refresh queue").click()
    page.get_by_text("Image 1 of 2").wait_for(timeout=30_000)
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("a")  # approve the first
    page.get_by_text(f"#{first}: pending → approved").wait_for(timeout=30_000)
    page.get_by_text("Image 1 of 1").wait_for(timeout=30_000)
    page.locator("#review-comment textarea").fill("logo too small")
    page.keyboard.press("Escape")
    page.keyboard.press("r")  # reject the next with the comment
    page.get_by_text(f"#{second}: pending → rejected").wait_for(timeout=30_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-tab.png"), full_page=True)
    with studio.engine.connect() as conn:
        statuses = dict(conn.execute(text("select id, review_status from images")).all())
    assert statuses == {first: "approved", second: "rejected"}

    page.get_by_role("tab", name="Gallery").click()
    page.get_by_role("button", name="Search").click()
    page.get_by_text("2 image(s)").wait_for(timeout=30_000)
    page.locator("button.thumbnail-item").last.click()  # the oldest: the approved one
    page.get_by_text("rex approve: pending → approved").wait_for(timeout=30_000)
    page.get_by_role("button", name="Remix (recipe for Generate)").click()
    page.get_by_text('"prompt": "a red circle"').wait_for(timeout=30_000)
    page.get_by_role("button", name="Regenerate exactly").click()  # generating is for marketers
    page.get_by_text("needs the admin or marketer role").first.wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "gallery-tab.png"), full_page=True)

    page.get_by_text("Compare and export").click()
    page.get_by_label(f"#{first} approved").check()
    page.get_by_label(f"#{second} rejected").check()
    page.get_by_role("button", name="Compare selected").click()
    page.get_by_text("field(s) differ (highlighted)").wait_for(timeout=30_000)
    page.get_by_role("button", name="Export selected (approved only)").click()
    page.get_by_text("Exported 1 image(s); 1 not approved, left out.").wait_for(timeout=30_000)
    page.locator("a[download]").first.wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "gallery-compare-export.png"), full_page=True)
    assert len(list(studio.gallery.exports_dir.glob("*.zip"))) == 1
