"""A reviewer who may edit (STUDIO_REVIEWERS_MAY_EDIT=1) reaches the Generate tab's edit mode (issue 19): the
tab is shown to them with its edit panel and without the text-to-image form; the Gallery's Edit opens the
image there and Apply edit makes the edited image. Text-to-image stays the marketers' (the services refuse
it). Real Chromium and gradio_client against the UI served in this process over a real SQLite file."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import PASSWORD, REX, with_engine
from e2e.edit_steps import apply_edit, open_edit_mode, open_in_gallery
from live_server import server  # noqa: F401 (the UI over ``studio``, on 127.0.0.1)
from playwright.sync_api import expect
from support.chromium import signed_in_page

# slow (about 35 s: a server, Chromium, an edit); tests/unit/test_reviewer_edit_tab.py checks the rules fast
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "e2e" / "artifacts"


@pytest.fixture
def studio(studio: Any, toy_engine: Any) -> Any:
    """The editing folder's studio (brand toy; mia marketer, rex reviewer) where reviewers may edit."""
    return with_engine(studio, toy_engine, dataclasses.replace(studio.settings, reviewers_may_edit=True))


@pytest.fixture
def page(server: str) -> Iterator[Any]:  # noqa: F811
    last = ARTIFACTS / "reviewer-edit-mode-last.png"
    with signed_in_page(server, "rex", PASSWORD, size=(1366, 900), last=last) as tab:
        yield tab


def test_a_reviewer_who_may_edit_opens_edit_mode_but_not_text_to_image(
    studio: Any,
    made: Any,
    page: Any,
    server: str,  # noqa: F811
) -> None:
    from gradio_client import Client

    generate_tab = page.get_by_role("tab", name="Generate")
    expect(generate_tab).to_be_visible(timeout=30_000)  # shown to the reviewer: its edit mode
    open_in_gallery(page, made.id, "pending")
    open_edit_mode(page, made.id)
    expect(page.locator("#gen-edit-only")).to_contain_text("needs the marketer role")
    expect(page.locator("#gen-form")).to_be_hidden()  # no text-to-image form
    expect(page.locator("#gen-generate")).to_be_hidden()
    edited = apply_edit(page)
    view = studio.editing.edit_of(REX, edited)
    assert view is not None and (view.kind, view.parent_image_id) == ("img2img", made.id)
    assert studio.gallery.detail(REX, edited).item.author == "rex"

    client = Client(server, auth=("rex", PASSWORD), verbose=False)
    with pytest.raises(Exception, match="needs the admin or marketer role"):  # text-to-image: refused
        client.predict(brand="toy", prompt="a red circle", api_name="/generate_api")
