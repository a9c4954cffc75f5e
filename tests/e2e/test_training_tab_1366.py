"""The Training tab at 1366×768 in real Chromium against ``python app.py`` on a fresh data folder (issue 15,
items 2, 6 and 7 for the Training tab):

- a bad upload (a ``.txt`` file, a text file named ``.png``) is a warning by the form: the drop zone, the
  captions table and every other component stay usable, keep their values, and a good upload then works;
- a real job's checkpoint shows the quality gate: the scores table with the best checkpoint marked and the
  images without and with the LoRA side by side (served, not broken); sample captions are whole; the job
  controls follow the job's state.

Screenshots go to ``tests/e2e/artifacts/`` (training-1366-*.png).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from e2e_support import ADMIN_PASSWORD, ARTIFACTS, RunningStudio, assert_no_error_state, close_toasts
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e]

VIEWPORT = {"width": 1366, "height": 768}
WAIT = 60_000
UPLOAD = "Images (PNG, JPEG, WebP) or a zip"


def sign_in(browser: Any, url: str) -> Any:
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.goto(url + "/")
    page.get_by_label("username").fill("admin")
    page.get_by_label("password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Login", exact=True).click()
    page.get_by_text("Signed in as admin").wait_for(timeout=WAIT)
    return page


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def visible(locator: Any) -> Any:
    return locator.filter(visible=True).first


def block(page: Any, label: str) -> Any:
    blocks = page.locator("div.block").filter(has=page.get_by_text(label, exact=True))
    return blocks.filter(visible=True).last


def field(page: Any, label: str) -> Any:
    """The visible text box labelled exactly ``label`` (another field's info line may name it too)."""
    return block(page, label).locator("textarea, input").first


def button(page: Any, name: str) -> Any:
    return visible(page.get_by_role("button", name=name, exact=True))


def pick(page: Any, label: str, option: str) -> None:
    visible(page.get_by_label(re.compile(rf"^{re.escape(label)}"))).click()
    page.get_by_role("option", name=option, exact=True).click()


def assert_usable(page: Any, where: str) -> None:
    """The dataset form's components are all there and take input."""
    for label in (UPLOAD, "Images", "Captions (edit the caption column, then save)", "New dataset name",
                  "Caption template", "Adapter", "Trigger word"):  # fmt: skip
        expect(block(page, label), f"{where}: {label} is gone").to_be_visible(timeout=WAIT)
    assert block(page, UPLOAD).locator("input[type=file]").count() == 1, f"{where}: the drop zone is gone"
    for label in ("New dataset name", "Caption template", "Adapter", "Trigger word"):
        assert block(page, label).locator("textarea, input").first.is_editable(), f"{where}: {label}"
    for name in ("Add to dataset", "Save captions", "Caption all", "Check dataset", "Queue training"):
        expect(button(page, name)).to_be_enabled()


def off_palette_images(folder: Path) -> list[Path]:
    """Yellow squares on white: far from ember's black, red and purple."""
    from studio.toyworld import world

    paths = []
    for i, position in enumerate(("center", "left", "right", "top")):
        path = folder / f"yellow_square_{i}.png"
        world.render(world.Scene("yellow", "square", "white", position)).save(path)
        paths.append(path)
    return paths


def test_bad_upload_keeps_the_form_and_the_quality_gate_shows(
    studio_server: RunningStudio, browser: Any, tmp_path: Path
) -> None:
    page = sign_in(browser, studio_server.url)
    page.get_by_role("tab", name="Training").click()
    expect(visible(page.get_by_text(re.compile("^No training jobs yet")))).to_be_visible(timeout=WAIT)
    job_field = visible(page.get_by_label("Job", exact=True))
    expect(job_field).to_have_value("")  # empty with a placeholder, not 0
    assert job_field.get_attribute("placeholder")
    for name in ("Cancel", "Resume", "Publish as the brand's active LoRA"):
        expect(button(page, name)).to_be_disabled()  # no job chosen: nothing to act on
    pick(page, "Brand", "ember")
    visible(page.get_by_label("New dataset name")).fill("quality gate")
    button(page, "Create dataset").click()
    page.get_by_text(re.compile(r"Dataset #\d+ created")).first.wait_for(timeout=WAIT)
    close_toasts(page)
    field(page, "Adapter").fill("ember-gate")
    field(page, "Trigger word").fill("gatesty")

    # bad uploads: a text file, then a text file named .png
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    fake = tmp_path / "fake.png"
    fake.write_text("not a png either")
    for bad in (notes, fake):
        drop = block(page, UPLOAD)
        drop.locator("input[type=file]").set_input_files(str(bad))
        page.wait_for_timeout(1500)  # the upload (or the browser's refusal of the type) settles
        button(page, "Add to dataset").click()
        expect(visible(page.get_by_text(re.compile(r"⚠️")))).to_be_visible(timeout=WAIT)
        assert_no_error_state(page, f"after uploading {bad.name}")
        assert_usable(page, f"after uploading {bad.name}")
        expect(field(page, "Adapter")).to_have_value("ember-gate")  # the form keeps its values
        expect(field(page, "Trigger word")).to_have_value("gatesty")
        expect(block(page, UPLOAD)).to_contain_text(bad.stem)  # and the chosen files
        shot(page, f"training-1366-bad-upload-{bad.suffix[1:]}")
        close_toasts(page)

    # a good upload still works after them
    drop = block(page, UPLOAD)
    clear = drop.get_by_role("button", name=re.compile("Clear", re.I))
    if clear.count() and clear.first.is_visible():
        clear.first.click()
    drop.locator("input[type=file]").set_input_files([str(p) for p in off_palette_images(tmp_path)])
    expect(drop.locator("tbody tr")).to_have_count(4, timeout=WAIT)
    button(page, "Add to dataset").click()
    page.get_by_text("Added 4 image(s).").first.wait_for(timeout=WAIT)
    assert_no_error_state(page, "after a good upload")
    field(page, "Caption template").fill("{trigger}, a red circle on a black background")
    button(page, "Caption all").click()
    expect(visible(page.get_by_text("gatesty, a red circle on a black background")).first).to_be_visible(
        timeout=WAIT
    )

    # a short job from the expert panel; its checkpoint shows the quality gate
    page.get_by_text("Expert settings").click()
    visible(page.get_by_label("Use these instead of the preset")).check()
    for label, value in (("Steps", 2), ("Batch size", 4), ("Checkpoint every", 2)):
        number = visible(page.get_by_label(f"number input for {label}", exact=True))
        number.fill(str(value))
        number.press("Enter")
    visible(page.get_by_label("Learning rate")).fill("0.05")
    button(page, "Queue training").click()
    deadline = time.monotonic() + 600  # a busy shared 2-core box
    header = ""
    while time.monotonic() < deadline:
        header = visible(page.locator("h4").filter(has_text="Job #")).inner_text(timeout=WAIT)
        if any(end in header for end in ("succeeded", "failed", "cancelled", "interrupted")):
            break
        time.sleep(1)
    assert "succeeded" in header, header
    gate = visible(page.locator(".quality-gate"))
    expect(gate.locator("img")).to_have_count(18, timeout=WAIT)  # 3 prompts × 2 seeds × 3 columns
    expect(gate).to_contain_text("palette (no LoRA → LoRA)")
    # the best mark (or why there is none: a 2-step LoRA may lower adherence; the rule is tested on a
    # scripted job in tests/integration/test_training_tab.py)
    expect(gate).to_contain_text(re.compile(r"Best checkpoint: step 2|none is marked best"))
    loaded = "() => [...document.querySelectorAll('.quality-gate img')].every(i => i.naturalWidth > 0)"
    page.wait_for_function(loaded, timeout=WAIT)  # every image is served (none broken)
    expect(button(page, "Cancel")).to_be_disabled()  # a finished job: only Publish
    expect(button(page, "Resume")).to_be_disabled()
    expect(button(page, "Publish as the brand's active LoRA")).to_be_enabled()
    cut = page.evaluate(
        "() => [...document.querySelectorAll('#training-samples .caption-label')]"
        ".filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"
    )
    assert cut == [], f"sample captions are cut: {cut}"
    assert_no_error_state(page, "the quality gate")
    gate.scroll_into_view_if_needed()
    shot(page, "training-1366-quality-gate")
