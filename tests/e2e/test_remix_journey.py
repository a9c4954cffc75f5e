"""Remix in a real browser: a marketer of two brands opens a lagoon image in the Gallery, clicks Remix, and
lands on the Generate tab with the image's recipe filled in, although the brand switch (ember → lagoon) fires
the brand's change event that otherwise resets the form to lagoon's defaults (CFG 5, 20 steps, Euler a)."""

from __future__ import annotations

import json

import pytest
from e2e_support import RunningStudio, login, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]  # app start, a CLI generation and Chromium: about a minute


def test_remix_lands_on_generate_with_the_recipe(studio_server: RunningStudio, browser: object) -> None:
    from playwright.sync_api import expect

    for args, stdin in (
        (("brands", "sync", "brands/"), None),
        (("users", "add", "mia", "--role", "marketer", "--password-stdin"), "mia-password\n"),
        (("brands", "grant", "ember", "mia"), None),
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
    assert "a yellow square" in json.dumps(json.loads(made.stdout))

    page = login(browser, studio_server.url, "mia", "mia-password")  # type: ignore[arg-type]
    page.get_by_role("tab", name="Generate").click()
    expect(page.get_by_label("Brand").first).to_have_value("Ember", timeout=30_000)  # the first brand
    page.get_by_role("tab", name="Gallery").click()
    page.get_by_text("1 image(s)").wait_for(timeout=30_000)
    page.locator("button.thumbnail-item:visible").first.click()  # not Generate's hidden templates
    page.get_by_text("a yellow square").first.wait_for(timeout=30_000)
    page.get_by_role("button", name="Remix (recipe for Generate)").click()

    expect(page.get_by_role("tab", name="Generate", selected=True)).to_be_visible(timeout=30_000)
    expect(page.get_by_label("Brand").first).to_have_value("Lagoon", timeout=30_000)
    page.wait_for_timeout(3000)  # the brand's change event (one quick service call) has run by now
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a yellow square")
    expect(page.get_by_role("textbox", name="Negative prompt")).to_have_value("smudge")
    expect(page.get_by_role("textbox", name="Seed")).to_have_value("77")
    expect(page.get_by_role("combobox", name="Sampler")).to_have_value("DDIM")
    expect(page.get_by_role("combobox", name="Size")).to_have_value("banner 16:9")
    # CFG and steps are number fields (out of range gets a message, not a slider's clamp)
    expect(page.get_by_role("spinbutton", name="CFG scale", exact=True)).to_have_value("6.5")
    expect(page.get_by_role("spinbutton", name="Steps", exact=True)).to_have_value("3")
    lora = page.get_by_role("spinbutton", name="number input for LoRA lagoon-style (lagoonstyle)")
    expect(lora).to_have_value("0.4")
    screenshot(page, "marketer-remix")
