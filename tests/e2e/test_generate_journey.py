"""Issue 4 in a real browser: a marketer of one brand generates with the embedded model, then a CFG sweep."""

from __future__ import annotations

import sqlite3

import pytest
from e2e_support import RunningStudio, login, screenshot

from studio.toyworld import MODEL_DIR

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.slow,  # six generations with the embedded model: about 6 minutes on the shared 2-core box
    pytest.mark.skipif(
        not (MODEL_DIR / "model_index.json").is_file(),
        reason="the embedded model's weights are not built yet",
    ),
]


def test_marketer_generates_on_brand_images_and_a_cfg_sweep(
    studio_server: RunningStudio, browser: object
) -> None:
    for args, stdin in (
        (("brands", "sync", "brands/"), None),
        (("users", "add", "mia", "--role", "marketer", "--password-stdin"), "mia-password\n"),
        (("brands", "grant", "lagoon", "mia"), None),
    ):
        done = studio_server.cli(*args, stdin=stdin)
        assert done.returncode == 0, done.stderr

    page = login(browser, studio_server.url, "mia", "mia-password")
    page.get_by_role("tab", name="Generate").click()
    page.get_by_label("Prompt", exact=True).fill("a orange circle")
    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text("Prompt sent:", exact=True).wait_for(timeout=120_000)
    # 15 tokens as the brand orders it, the embedded model reads 14: the trigger word goes first, uncut
    page.get_by_text("lagoonstyle, a orange circle").first.wait_for()
    screenshot(page, "marketer-generated")

    page.get_by_role("button", name="CFG sweep", exact=True).click()
    page.get_by_text("CFG 14").first.wait_for(timeout=240_000)
    screenshot(page, "marketer-cfg-sweep")

    with sqlite3.connect(studio_server.home / "studio.db") as connection:
        rows = connection.execute("select file_path, review_status from images order by id").fetchall()
        cfgs = [r[0] for r in connection.execute("select cfg from generations order by id")]
    assert len(rows) == 6 and {status for _, status in rows} == {"pending"}
    assert cfgs[1:] == [2.0, 4.0, 7.0, 10.0, 14.0]
    assert all((studio_server.home / "images" / path).is_file() for path, _ in rows)
