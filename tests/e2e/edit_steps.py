"""Browser steps of editing (issue 19), shared by the journeys and the edit browser test: open an image of the
Gallery in the Generate tab's edit mode, expand it, expand it to every channel size, paint a region on an
ImageEditor, reject with it, approve a campaign group, fix a marked region. Each waits (bounded) for the
page's answer and returns what it says."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect

LONG = 240_000  # ms: a busy 2-core box


def open_in_gallery(page: Any, image_id: int, status: str) -> None:
    """The Gallery tab, listed afresh, with image ``#image_id`` (showing ``status``) opened."""
    page.get_by_role("tab", name="Gallery").click()
    close_preview(page, wait_ms=0)  # one left open would cover the grid
    page.get_by_role("button", name="Search", exact=True).filter(visible=True).first.click()
    cell = page.locator("#gallery-grid").get_by_text(f"#{image_id} {status}", exact=False).first
    cell.wait_for(timeout=60_000)
    close_preview(page, wait_ms=2_000)  # the listing reopens the one the details show
    cell.click()
    close_preview(page)
    page.locator("#gallery-facts").get_by_text(f"#{image_id}").first.wait_for(timeout=60_000)
    page.locator("#gallery-lineage").locator("p").first.wait_for(timeout=60_000)


def close_preview(page: Any, wait_ms: int = 5_000) -> None:
    """Close the Gallery grid's enlarged view (a click on a cell opens it; it covers the grid), waiting
    ``wait_ms`` for it to open."""
    preview = page.locator("#gallery-grid .preview").filter(visible=True).first
    try:
        preview.wait_for(timeout=max(wait_ms, 1))
    except PlaywrightTimeout:
        return  # not open
    preview.press("Escape")
    preview.wait_for(state="hidden", timeout=10_000)


def open_edit_mode(page: Any, image_id: int, *, fix_region: bool = False) -> None:
    """Click Edit (or Fix region) on the opened gallery image: the Generate tab shows its edit panel."""
    page.locator("#gallery-fix-region" if fix_region else "#gallery-edit").click()
    header = page.locator("#edit-header").get_by_text(f"Edit mode · image #{image_id}")
    header.wait_for(timeout=60_000)
    page.locator("#edit-source canvas").first.wait_for(timeout=60_000)


def choose_kind(page: Any, label: str) -> None:
    page.locator("#edit-kind").get_by_text(label, exact=True).click()


def pick_option(page: Any, elem_id: str, option: str) -> None:
    """Choose ``option`` in the dropdown ``#elem_id``."""
    page.locator(f"#{elem_id} input").first.click()
    page.get_by_role("option", name=option, exact=True).click()


def apply_edit(page: Any) -> int:
    """Apply edit; the new image's id (from the panel's message)."""
    page.locator("#edit-apply").click()
    line = page.locator("#edit-message").get_by_text(re.compile(r"Made #\d+ by"))
    line.wait_for(timeout=LONG)
    found = re.search(r"Made #(\d+) by", line.inner_text())
    assert found, line.inner_text()
    return int(found.group(1))


def expand_to_all(page: Any) -> str:
    """Expand to all channel sizes; the panel's message."""
    page.locator("#edit-campaign").click()
    line = page.locator("#edit-message").get_by_text(re.compile(r"Expanded #\d+ to"))
    line.wait_for(timeout=LONG)
    return str(line.inner_text())


#: True when no component shows Gradio's loading state (as the journeys' screenshots wait for)
SETTLED = """() => ![...document.querySelectorAll("[data-testid='status-tracker']")].some((w) => {
  const r = w.getBoundingClientRect();
  return !w.classList.contains("hide") && getComputedStyle(w).opacity !== "0" && r.width > 0 && r.height > 0;
})"""


def settle(page: Any) -> None:
    """Wait until no event is still filling a component (a queued refresh would reset the editor)."""
    page.wait_for_timeout(500)
    page.wait_for_function(SETTLED, timeout=LONG)


def paint(page: Any, elem_id: str, *, half_width: int = 18, dx: int = 0, settle_first: bool = True) -> None:
    """Paint a filled patch in the middle of the picture in ImageEditor ``#elem_id`` (the brush is the
    tool the editor starts with), moved ``dx`` screen pixels right of the middle: a zig-zag of strokes,
    ``half_width`` screen pixels each side. First waits until no event is running (``settle_first``)."""
    if settle_first:
        settle(page)
    canvas = page.locator(f"#{elem_id} canvas").last
    canvas.scroll_into_view_if_needed()  # the mouse reaches only what the viewport shows
    box = canvas.bounding_box()
    assert box, "the editor's canvas is shown"
    cx, cy = box["x"] + box["width"] / 2 + dx, box["y"] + box["height"] / 2
    page.mouse.move(cx - half_width, cy - half_width)
    page.mouse.down()
    for row in range(-half_width, half_width + 1, 6):
        page.mouse.move(cx - half_width, cy + row, steps=4)
        page.mouse.move(cx + half_width, cy + row, steps=8)
    page.mouse.up()
    page.wait_for_timeout(500)  # the editor commits the stroke to its layer


def reject_with_region(page: Any, comment: str) -> str:
    """Paint a region on the review image, comment, Reject; the outcome line."""
    paint(page, "review-region")
    page.locator("#review-comment textarea").fill(comment)
    return reject_marked(page)


def reject_marked(page: Any) -> str:
    """Reject (the comment typed, a region painted); the outcome line that names the marked region."""
    page.locator("#review-reject").click()
    line = page.locator("#review-outcome").get_by_text(re.compile(r"region #\d+ marked to fix"))
    line.wait_for(timeout=LONG)
    return str(line.inner_text())


def _position(page: Any) -> tuple[int, int, str]:
    """The review queue's position (``Image k of n``) and the facts shown, whitespace normalised."""
    shown = " ".join(page.locator("#review-facts").inner_text().split())
    found = re.search(r"Image (\d+) of (\d+)", shown)
    assert found, f"the review queue shows no image: {shown}"
    return int(found[1]), int(found[2]), shown


def show_in_review(page: Any, image_id: int) -> None:
    """The Review tab's queue, refreshed, moved (Previous to its start, then Next) until it shows image
    ``#image_id`` (a refresh keeps the position the queue was at)."""
    page.get_by_role("tab", name="Review").click()
    page.get_by_role("button", name="Refresh queue").filter(visible=True).first.click()
    facts = page.locator("#review-facts")
    facts.get_by_text(re.compile(r"Image \d+ of \d+")).first.wait_for(timeout=60_000)
    settle(page)  # the refresh (and the login's own listing) done: no click races a reload
    at, total, shown = _position(page)
    while at > 1:
        page.locator("#review-prev").click()
        at -= 1
        expect(facts).to_contain_text(f"Image {at} of", timeout=60_000)
    for _ in range(total):
        at, total, shown = _position(page)
        if f"#{image_id} ·" in shown:
            break
        assert at < total, f"#{image_id} is not in the review queue (at its end: {shown})"
        page.locator("#review-next").click()
        expect(facts).to_contain_text(f"Image {at + 1} of", timeout=60_000)
    expect(facts).to_contain_text(f"#{image_id} ·", timeout=30_000)
    page.locator("#review-lineage").locator("p").first.wait_for(timeout=60_000)
    settle(page)


def approve_group(page: Any) -> str:
    """Approve the shown campaign group; the outcome line."""
    button = page.locator("#review-approve-group")
    button.wait_for(timeout=60_000)
    button.click()
    line = page.locator("#review-outcome").get_by_text(re.compile(r"Campaign group: approved \d+"))
    line.wait_for(timeout=LONG)
    settle(page)  # the queue reloads after the decision
    return str(line.inner_text())
