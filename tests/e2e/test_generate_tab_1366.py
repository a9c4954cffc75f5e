"""Issue 15 in Chromium at 1366×768: the Generate tab as a marketer meets it on a laptop screen.

The Generate and Cancel buttons and the progress line stay on screen after a click; progress reads
``step 12/40 · image 2/4 · ETA 8 s``, once; Ctrl+Enter generates; "Reuse seed" puts the last seed back;
numbers out of range, an empty prompt and a banned term get a message under the field while every
component stays usable (no Gradio "Error" pill, the form keeps its values); Cancel keeps the images already
finished and says how many; downloads are named ``<brand>-<id>-<seed>.png``; results are shown whole
(object-fit contain, nearest-neighbour upscaling); the token counter shows ``n / 30`` for the embedded
model, says what is cut and flags unknown words; a brand switch clears the results. Screenshots go to
``tests/e2e/artifacts/generate-1366-*.png``.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_support import ARTIFACTS, RunningStudio
from playwright.sync_api import expect

from studio.toyworld import MODEL_DIR

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not (MODEL_DIR / "model_index.json").is_file(),
        reason="the embedded model's weights are not built yet",
    ),
]

WIDTH, HEIGHT = 1366, 768
PROGRESS = re.compile(r"step (\d+)/(\d+) · image (\d+)/(\d+) · ETA (\d+ s|…)")
TAB = "#gen-form"


def shot(page: Any, name: str) -> None:
    """What the user sees (the viewport, not the whole page)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"generate-1366-{name}.png"))


def in_view(page: Any, selector: str) -> bool:
    box = page.locator(selector).first.bounding_box()
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= HEIGHT and box["width"] > 0


def number_input(page: Any, label: str) -> Any:
    """A field by its label (the seed by its id: its label carries its help text)."""
    if label == "Seed":
        return page.locator("#gen-seed textarea, #gen-seed input").first
    return page.get_by_label(label, exact=True).first


def set_form(page: Any, **values: str) -> None:
    for label, value in values.items():
        field = number_input(page, label)
        field.fill(value)
        field.press("Tab")


#: over the embedded model's 30 tokens (between its start and end tokens) with the trigger word
TWO_SCENES = "a red circle on a white background, left, a blue square on a teal background, a green triangle"


def tokens_say(page: Any, text: str, timeout: float = 10_000) -> None:
    """Wait until the token line under the prompt shows ``text``."""
    page.wait_for_function(
        "text => document.querySelector('#gen-tokens').innerText.includes(text)", arg=text, timeout=timeout
    )


def progress_says(page: Any, text: str, timeout: float = 10_000) -> None:
    """Wait until the line under the Generate button shows ``text``."""
    page.wait_for_function(
        "text => document.querySelector('#gen-progress').innerText.includes(text)", arg=text, timeout=timeout
    )


def error_pills(page: Any) -> int:
    """Gradio's red status badges ("Error") on any component of the tab."""
    badges = page.locator(f"{TAB} .error, #gen-results .error, .status-tracker .error").count()
    return badges + page.get_by_text("Error", exact=True).count()


@pytest.fixture(scope="module")
def page(studio_server: RunningStudio, browser: Any) -> Iterator[Any]:
    for args, stdin in (
        (("brands", "sync", "brands/"), None),
        (("users", "add", "mia", "--role", "marketer", "--password-stdin"), "mia-password\n"),
        (("brands", "grant", "ember", "mia"), None),
        (("brands", "grant", "lagoon", "mia"), None),
    ):
        done = studio_server.cli(*args, stdin=stdin)
        assert done.returncode == 0, done.stderr
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT}, accept_downloads=True)
    page = context.new_page()
    page.goto(studio_server.url + "/")
    page.get_by_label("username").fill("mia")
    page.get_by_label("password").fill("mia-password")
    page.get_by_role("button", name="Login", exact=True).click()
    page.get_by_text("Signed in as mia").wait_for(timeout=30_000)
    page.get_by_role("tab", name="Generate").click()
    page.locator("#gen-tokens").get_by_text("/ 30").wait_for(timeout=30_000)  # the brand's form is in
    try:
        yield page
    finally:
        context.close()


def test_the_form_fits_a_laptop_screen(page: Any) -> None:
    shot(page, "1-form")
    for selector in ("#gen-generate", "#gen-cancel", "#gen-progress", "#gen-results"):
        assert in_view(page, selector), f"{selector} is below the fold at {WIDTH}×{HEIGHT}"
    assert page.locator("#gen-random-seed").inner_text().strip() == "Random seed"  # no emoji: no empty box
    assert page.get_by_role("button", name=re.compile("share", re.I)).count() == 0
    sampler = page.get_by_label("Sampler", exact=True).first.bounding_box()
    size = page.get_by_label("Size", exact=True).first.bounding_box()
    assert sampler and size and abs(sampler["y"] - size["y"]) < 2, (sampler, size)  # dropdowns aligned
    cfg = page.locator("#gen-cfg").bounding_box()
    assert cfg and cfg["width"] > 400  # the CFG help has the form's width, not a squeezed half


def test_the_token_counter_counts_cuts_and_flags_unknown_words(page: Any) -> None:
    tokens = page.locator("#gen-tokens")
    page.get_by_label("Prompt", exact=True).fill("a blue sneaker")
    tokens_say(page, "Unknown to this model: sneaker")
    assert re.search(r"Tokens: \d+ / 30", tokens.inner_text())
    assert "Words this model knows" in tokens.inner_text() and "triangle" in (tokens.text_content() or "")
    page.get_by_label("Prompt", exact=True).fill("a red circle on a white background, left")
    tokens_say(page, "sent as: a red circle on a white background, left, emberstyle")  # fits: brand's order
    assert "it will not see" not in tokens.inner_text()
    page.get_by_label("Prompt", exact=True).fill(TWO_SCENES)
    tokens_say(page, f"sent as: emberstyle, {TWO_SCENES}")
    text = tokens.inner_text()  # the trigger word first: never the part cut
    cut = text.split("it will not see", 1)[1]
    assert "emberstyle" not in cut and "triangle" in cut
    shot(page, "2-tokens")


def test_bad_input_gets_messages_and_every_component_stays(page: Any) -> None:
    page.get_by_label("Prompt", exact=True).fill("a red circle")
    set_form(page, Steps="10000", **{"CFG scale": "-3"})
    page.locator("#gen-generate").click()
    page.get_by_text("steps: 10000 is outside 1-150").first.wait_for(timeout=10_000)  # under the field
    page.get_by_text("cfg: -3 is outside 1-30").first.wait_for()
    shot(page, "3-out-of-range")
    progress_says(page, "Not generated: cfg: -3 is outside 1-30 · steps: 10000 is outside 1-150")
    assert number_input(page, "Steps").input_value() == "10000"  # not clamped, the form keeps it
    assert number_input(page, "CFG scale").input_value() == "-3"

    set_form(page, Steps="12", **{"CFG scale": "6"})
    page.get_by_label("Prompt", exact=True).fill("   ")
    tokens_say(page, "sent as: emberstyle\n")
    page.locator("#gen-generate").click()
    progress_says(page, "Not generated: prompt: must not be empty")
    page.get_by_label("Prompt", exact=True).fill("a gore circle")
    tokens_say(page, "sent as: a gore circle, emberstyle")
    page.locator("#gen-generate").click()
    page.get_by_text("prompt: contains 'gore', a term banned by brand ember").first.wait_for(timeout=10_000)
    shot(page, "4-banned")
    progress_says(page, "Not generated: prompt: contains 'gore', a term banned by brand ember")
    assert page.get_by_label("Prompt", exact=True).input_value() == "a gore circle"
    assert error_pills(page) == 0
    for label in ("Brand", "Prompt", "Negative prompt", "CFG scale", "Steps", "Images", "Sampler", "Size"):
        field = page.get_by_label(label, exact=label != "Negative prompt").first
        assert field.is_visible() and field.is_enabled(), label
    for selector in ("#gen-generate", "#gen-sweep", "#gen-cancel", "#gen-results", "#gen-reuse-seed"):
        assert page.locator(selector).is_visible(), selector


def test_ctrl_enter_generates_with_one_progress_line(page: Any, studio_server: RunningStudio) -> None:
    page.get_by_label("Prompt", exact=True).fill("a red circle")
    set_form(page, Steps="30", Images="2", Seed="4242")
    page.get_by_label("Prompt", exact=True).press("Control+Enter")
    progress = page.locator("#gen-progress")
    progress.get_by_text(PROGRESS).wait_for(timeout=60_000)
    line = progress.inner_text()
    match = PROGRESS.search(line)
    assert match and match.group(2) == "30" and match.group(4) == "2", line
    assert len(PROGRESS.findall(page.locator("body").inner_text())) == 1  # once, not twice
    for selector in ("#gen-generate", "#gen-cancel", "#gen-progress"):
        assert in_view(page, selector), selector
    shot(page, "5-progress")
    progress.get_by_text("Done: 2 images").wait_for(timeout=90_000)
    images = page.locator("#gen-results img")
    images.first.wait_for()
    assert images.count() == 2
    for i in range(images.count()):
        style = images.nth(i).evaluate(
            "img => [getComputedStyle(img).objectFit, getComputedStyle(img).imageRendering,"
            " img.naturalWidth, img.getBoundingClientRect().width]"
        )
        assert style[0] == "contain" and style[1] == "pixelated", style  # whole, nearest-neighbour
        assert style[3] > style[2]  # the 64-px image is shown larger than it is
    src = images.first.get_attribute("src") or ""
    with sqlite3.connect(studio_server.home / "studio.db") as db:
        image_id, seed = db.execute("select id, seed from images order by id limit 1").fetchone()
    assert seed == 4242 and src.endswith(f"/ember-{image_id}-4242.png"), src
    shot(page, "6-results")

    number_input(page, "Seed").fill("")
    page.locator("#gen-reuse-seed").click()
    expect(number_input(page, "Seed")).to_have_value("4242", timeout=10_000)

    images.first.click()  # the preview, with its download button
    with page.expect_download() as download:
        page.get_by_role("button", name=re.compile("download", re.I)).first.click()
    assert download.value.suggested_filename == f"ember-{image_id}-4242.png"
    page.keyboard.press("Escape")


def test_cancel_keeps_the_finished_images_and_says_how_many(page: Any, studio_server: RunningStudio) -> None:
    with sqlite3.connect(studio_server.home / "studio.db") as db:
        before = db.execute("select count(*) from images").fetchone()[0]
    set_form(page, Steps="40", Images="4", Seed="")
    page.locator("#gen-generate").click()
    page.locator("#gen-progress").get_by_text(re.compile(r"image 2/4")).wait_for(timeout=90_000)
    page.locator("#gen-cancel").click()
    done = page.locator("#gen-progress").get_by_text(re.compile(r"Cancelled: kept \d of 4 images"))
    done.wait_for(timeout=60_000)
    kept = int(re.search(r"kept (\d)", done.inner_text()).group(1))  # type: ignore[union-attr]
    assert 1 <= kept < 4
    page.wait_for_function(f"document.querySelectorAll('#gen-results img').length === {kept}")
    with sqlite3.connect(studio_server.home / "studio.db") as db:
        assert db.execute("select count(*) from images").fetchone()[0] == before + kept
    assert error_pills(page) == 0
    shot(page, "7-cancelled")


def test_a_brand_switch_clears_the_results(page: Any) -> None:
    assert page.locator("#gen-results img").count() > 0
    page.get_by_label("Brand", exact=True).first.click()
    page.get_by_role("option", name="Lagoon").click()
    page.wait_for_function("document.querySelectorAll('#gen-results img').length === 0", timeout=15_000)
    page.locator("#gen-tokens").get_by_text("lagoonstyle").first.wait_for(timeout=10_000)
    thumb = page.locator("#gen-templates img").first
    thumb.wait_for(timeout=10_000)
    assert thumb.evaluate("img => getComputedStyle(img).objectFit") == "contain"
    assert page.locator("#gen-progress").inner_text().strip() == ""  # the last brand's run line too
    shot(page, "8-brand-switch")
    page.screenshot(path=str(ARTIFACTS / "generate-1366-9-whole-form.png"), full_page=True)
