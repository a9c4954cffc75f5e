"""Issue 16: user text is shown as text, in real Chromium against ``python app.py``.

A prompt, a negative prompt, a rejection comment, a training caption and a brand description each carry
``![x](/logout)``, ``[a](javascript:…)``, ``<img src=x onerror=…>``, ``![t](/injected-track.png)``, autolinks,
``$$`` maths and ``**bold**``; they go through every place that shows user text: the gallery's image
details, review history and compare table, the Review tab, Generate's "Prompt sent", the Training tab's
captions and the Brands tab's description. In each, the rendered DOM holds no ``<img>``, ``<a href>`` or
maths made from them, the browser requests none of the injected addresses, the text is shown literally, and
the reviewer is still signed in at the end.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from e2e_support import ARTIFACTS, RunningStudio, close_toasts
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e]

PASSWORD = "user-text-password-1"
ATTACK = (
    "![x](/logout) [a](javascript:alert(1)) <img src=x onerror=alert(2)> ![t](/injected-track.png)"
    " http://injected.example/a www.injected.example $$x^2$$ **bold**"
)
PROMPT = f"a red circle {ATTACK}"
#: what must show literally wherever the text is shown
LITERALS = (
    "![x](/logout)",
    "[a](javascript:alert(1))",
    "<img src=x onerror=alert(2)>",
    "http://injected.example/a",
    "$$x^2$$",
    "**bold**",
)
#: addresses the page must never ask for
INJECTED = ("/logout", "injected", "javascript:")
#: ``<img src=x>`` asks for ``…/x``: matched at the end (a studio link's random token may start with x)
INJECTED_PATH_END = "/x"
#: elements a Markdown or HTML injection would make
MADE = (
    "img[src*='logout'], img[src$='/x'], img[src='x'], img[src*='injected-track'], img[onerror],"
    " a[href^='javascript'], a[href*='logout'], a[href*='injected'], .prose .katex"
)


@pytest.fixture(scope="module")
def seeded(studio_server: RunningStudio, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The app's data folder with the demo brands; mia (marketer), rex (reviewer) in lagoon, ada (admin);
    two of mia's images with the attack in both prompts, one rejected with it as the comment; lagoon's
    description and a dataset caption carrying it too."""
    from argon2 import PasswordHasher, profiles
    from helpers import DEMO_BRANDS

    from studio.config import Settings
    from studio.services.container import build_services
    from studio.services.generation import GenerateInput
    from studio.services.views import SYSTEM, Actor
    from studio.toyworld import world

    services = build_services(
        Settings.from_env({"STUDIO_HOME": str(studio_server.home)}),
        password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST),
    )
    try:
        services.brands.sync(SYSTEM, DEMO_BRANDS)
        for name, role in (("mia", "marketer"), ("rex", "reviewer"), ("ada", "admin")):
            services.users.add_user(SYSTEM, name, [role], PASSWORD)
        for name in ("mia", "rex"):
            services.brands.grant(SYSTEM, "lagoon", name)
        ask = GenerateInput(brand="lagoon", prompt=PROMPT, negative_prompt=ATTACK, steps=4, batch_size=2)
        made = services.generation.generate(Actor.user("mia"), ask).images
        services.review.decide(Actor.user("rex"), made[0].id, "reject", ATTACK)
        spec = services.brands.spec_of(SYSTEM, "lagoon")
        services.brands.update_brand(SYSTEM, "lagoon", dataclasses.replace(spec, description=ATTACK))
        folder = tmp_path_factory.mktemp("dataset")
        square = folder / "yellow_square.png"
        world.render(world.Scene("yellow", "square", "white", "center")).save(square)
        dataset = services.datasets.create_dataset(SYSTEM, "lagoon", "attack")
        image = services.datasets.add_images(SYSTEM, dataset.id, [square]).dataset.images[0]
        services.datasets.set_captions(SYSTEM, dataset.id, {image.id: ATTACK})
        yield services
    finally:
        services.close()


class Watched:
    """A signed-in page whose every request is recorded."""

    def __init__(self, browser: Any, url: str, username: str) -> None:
        self.context = browser.new_context(viewport={"width": 1366, "height": 900})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.goto(url + "/")
        self.page.get_by_label("username").fill(username)
        self.page.get_by_label("password").fill(PASSWORD)
        self.page.get_by_role("button", name="Login", exact=True).click()
        self.page.get_by_text(f"Signed in as {username}").wait_for(timeout=30_000)
        self.username = username

    def check(self, where: str, container: str) -> None:
        """No element made from the attack anywhere on the page, no injected address requested, and the
        text shown literally inside ``container``."""
        page = self.page
        page.wait_for_timeout(1000)  # anything the page would fetch for what it just rendered
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"user-text-{where}.png"), full_page=True)
        made = page.locator(MADE).evaluate_all(
            "(els) => els.filter((e) => !(e.textContent.trim() === 'Log out' && !e.closest('.prose')))"
            ".map((e) => e.outerHTML)"  # the studio's own Log out button is not user text
        )
        assert made == [], f"{where}: elements made from user text: {made}"
        asked = [
            u for u in self.requests
            if any(bad in u for bad in INJECTED) or urlsplit(u).path.endswith(INJECTED_PATH_END)
        ]
        assert asked == [], f"{where}: the page requested injected addresses: {asked}"
        shown = page.locator(container).first.inner_text()
        for literal in LITERALS:
            assert literal in shown, f"{where}: {literal!r} is not shown literally in {shown[:600]!r}"

    def close(self) -> None:
        self.context.close()


@pytest.fixture(scope="module")
def rex(studio_server: RunningStudio, seeded: Any, browser: Any) -> Iterator[Watched]:
    watched = Watched(browser, studio_server.url, "rex")
    try:
        yield watched
    finally:
        watched.close()


def test_image_details_and_review_history_in_the_gallery(rex: Watched) -> None:
    page = rex.page
    page.get_by_role("tab", name="Gallery").click()
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_text(re.compile(r"Page 1: \d+ image\(s\)")).first.wait_for(timeout=30_000)
    page.locator("#gallery-grid button.thumbnail-item").last.click()  # the oldest: the rejected one
    page.wait_for_function(
        "() => /rejected/.test(document.querySelector('#gallery-facts')?.innerText || '')", timeout=30_000
    )
    page.locator("#gallery-history").get_by_text("pending → rejected").first.wait_for(timeout=30_000)
    rex.check("gallery-details", "#gallery-facts")
    rex.check("gallery-history", "#gallery-history")


def test_the_compare_table(rex: Watched) -> None:
    page = rex.page
    page.get_by_text("Compare and export").click()
    boxes = page.locator("#gallery-selected input[type=checkbox]")
    expect(boxes).to_have_count(2, timeout=30_000)
    for i in (0, 1):
        boxes.nth(i).check()
    page.get_by_role("button", name="Compare selected").click()
    page.locator("#gallery-compare table").first.wait_for(timeout=30_000)
    page.locator("#gallery-compare details summary").first.click()  # the fields both share: the prompt
    rex.check("compare", "#gallery-compare")


def test_the_review_tab(rex: Watched) -> None:
    page = rex.page
    page.get_by_role("tab", name="Review").click()
    page.get_by_role("button", name="Refresh queue").click()
    page.get_by_text("Image 1 of 1").wait_for(timeout=60_000)
    rex.check("review-facts", "#review-facts")
    rex.check("review-more", "#review-more")


def test_generate_shows_the_prompt_sent_as_text(
    studio_server: RunningStudio, seeded: Any, browser: Any
) -> None:
    mia = Watched(browser, studio_server.url, "mia")
    try:
        page = mia.page
        page.get_by_role("tab", name="Generate").click()
        page.locator("#gen-tokens").get_by_text("Tokens").first.wait_for(timeout=30_000)
        page.get_by_label("Prompt", exact=True).fill(PROMPT)
        page.get_by_label("Negative prompt").first.fill(ATTACK)
        page.locator("#gen-generate").click()
        page.get_by_text("Prompt sent:").first.wait_for(timeout=120_000)
        close_toasts(page)
        mia.check("generate-prompt-sent", "#gen-final-prompt")
        mia.check("generate-tokens", "#gen-tokens")
    finally:
        mia.close()


def test_brand_description_and_training_captions(
    studio_server: RunningStudio, seeded: Any, browser: Any
) -> None:
    ada = Watched(browser, studio_server.url, "ada")
    try:
        page = ada.page
        page.get_by_role("tab", name="Brands").click()
        page.get_by_label("Brand", exact=True).filter(visible=True).first.click()
        page.get_by_role("option", name="lagoon", exact=True).click()
        page.locator("#brand-details").get_by_text("Lagoon").first.wait_for(timeout=30_000)
        ada.check("brand-description", "#brand-details")

        page.get_by_role("tab", name="Training").click()
        page.get_by_label("Brand", exact=True).filter(visible=True).first.click()
        page.get_by_role("option", name="lagoon", exact=True).click()
        dataset = page.get_by_label("Dataset", exact=True).filter(visible=True).first
        dataset.click()
        page.get_by_role("option", name=re.compile(r"attack")).click()
        page.wait_for_function(
            "() => (document.querySelector('#training-captions')?.innerText || '').includes('yellow_square')",
            timeout=30_000,
        )
        ada.check("training-captions", "#training-captions")
    finally:
        ada.close()


def test_the_reviewer_is_still_signed_in(rex: Watched, studio_server: RunningStudio) -> None:
    page = rex.page
    assert not [u for u in rex.requests if "/logout" in u]
    answer = page.request.get(studio_server.url + "/config")
    assert answer.status == 200, "the reviewer's session ended"
    page.reload()
    page.get_by_text("Signed in as rex").wait_for(timeout=30_000)
    assert Path(ARTIFACTS).is_dir()
