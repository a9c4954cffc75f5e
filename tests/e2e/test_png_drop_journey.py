"""Settings from a PNG in a real browser (issue 17): a marketer drops a PNG the studio made (downloaded, so
a copy of the file) on the Generate tab's "Settings from a PNG", the form fills with its recipe, and
Generate makes the same pixels; an A1111 PNG fills it for the picked brand and the note names what did not
map."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from e2e_support import RunningStudio, assert_no_error_state, login, screenshot
from PIL import Image
from PIL.PngImagePlugin import PngInfo

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # app start, two generations and Chromium: about a minute


def test_a_dropped_studio_png_fills_the_form_and_regenerates_the_same_pixels(
    studio_server: RunningStudio, browser: object, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    for args, stdin in (
        (("brands", "sync", "brands/"), None),
        (("users", "add", "mia", "--role", "marketer", "--password-stdin"), "mia-password\n"),
        (("brands", "grant", "lagoon", "mia"), None),
    ):
        done = studio_server.cli(*args, stdin=stdin)
        assert done.returncode == 0, done.stderr
    made = studio_server.cli(
        *("generate", "--brand", "lagoon", "--prompt", "a yellow square", "--negative", "smudge"),
        *("--cfg", "6.5", "--steps", "3", "--seed", "77", "--sampler", "DDIM", "--size", "banner 16:9"),
        *("--lora", "lagoon-style=0.4", "--user", "mia", "--json"),
    )
    assert made.returncode == 0, made.stderr
    original = json.loads(made.stdout)["images"][0]
    dragged = tmp_path / "downloaded.png"
    shutil.copyfile(original["path"], dragged)

    page = login(browser, studio_server.url, "mia", "mia-password")  # type: ignore[arg-type]
    page.get_by_role("tab", name="Generate").click()
    expect(page.get_by_label("Brand").first).to_have_value("Lagoon", timeout=30_000)
    sampler = page.get_by_role("combobox", name="Sampler")
    expect(sampler).to_have_value("Euler", timeout=30_000)  # the brand's defaults are in: now drop
    page.locator("#gen-png-drop input[type=file]").set_input_files(str(dragged))

    expect(page.locator("#gen-png-note")).to_contain_text(
        f"Settings of studio image #{original['id']} (brand lagoon)", timeout=30_000
    )
    page.wait_for_timeout(3000)  # the brand's change event (one quick service call) has run by now
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a yellow square")
    expect(page.get_by_role("textbox", name="Negative prompt")).to_have_value("smudge")
    expect(page.get_by_role("textbox", name="Seed")).to_have_value("77")
    expect(sampler).to_have_value("DDIM")
    expect(page.get_by_role("combobox", name="Size")).to_have_value("banner 16:9")
    expect(page.get_by_role("spinbutton", name="CFG scale", exact=True)).to_have_value("6.5")
    expect(page.get_by_role("spinbutton", name="Steps", exact=True)).to_have_value("3")
    lora = page.get_by_role("spinbutton", name="number input for LoRA lagoon-style (lagoonstyle)")
    expect(lora).to_have_value("0.4")
    screenshot(page, "marketer-png-dropped")

    page.get_by_role("button", name="Generate", exact=True).click()
    page.get_by_text("Prompt sent:", exact=True).wait_for(timeout=120_000)
    assert_no_error_state(page, "after Generate from the dropped PNG")
    with sqlite3.connect(studio_server.home / "studio.db") as connection:
        rows = connection.execute("select pixel_sha256, seed from images order by id").fetchall()
    assert rows == [(original["pixel_sha256"], 77), (original["pixel_sha256"], 77)]

    info = PngInfo()  # a PNG as A1111 saves one
    info.add_text(
        "parameters",
        "a teal circle <lora:lagoon-style:0.3> <lora:film-grain:1>\nNegative prompt: text\n"
        "Steps: 4, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7.5, Seed: 1234, Size: 64x112, "
        "Model: sd_xl_base_1.0, Clip skip: 2, Version: v1.10.1",
    )
    foreign = tmp_path / "00012-1234.png"
    Image.new("RGB", (64, 112), "teal").save(foreign, pnginfo=info)
    page.locator("#gen-png-drop input[type=file]").set_input_files(str(foreign))
    note = page.locator("#gen-png-note")
    expect(note).to_contain_text(
        "Settings from 00012-1234.png (A1111 parameters) for brand lagoon", timeout=30_000
    )
    expect(note).to_contain_text("LoRA 'film-grain' is not one of brand lagoon's (it has: lagoon-style)")
    expect(note).to_contain_text("model sd_xl_base_1.0 is not the brand's")
    expect(note).to_contain_text("fields not used: Clip skip")
    page.wait_for_timeout(3000)
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a teal circle")
    expect(page.get_by_role("textbox", name="Seed")).to_have_value("1234")
    expect(sampler).to_have_value("Euler a")
    expect(page.get_by_role("combobox", name="Size")).to_have_value("story 9:16")
    expect(page.get_by_role("spinbutton", name="CFG scale", exact=True)).to_have_value("7.5")
    expect(lora).to_have_value("0.3")
    screenshot(page, "marketer-a1111-png-dropped")
