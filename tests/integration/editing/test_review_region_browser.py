"""The Review tab's region to fix (issue 19) in real Chromium against the UI served in this process: a region
painted after the review queue reloads (after a decision, or Refresh) is the one saved with Reject, on the
image shown, at its size; a reload clears what was painted and not sent (no stale region is posted).

Gradio's frontend re-reads (and re-uploads) an ImageEditor whenever any event's status changes once the editor
has been an event's output: each re-read reloaded the editor, so the strokes painted after a reload were lost
(or the editor stayed "processing"). The region editor is therefore filled in the browser from the shown
image's address (see :mod:`studio.ui.review_edits`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import MIA, PASSWORD, REX
from e2e.edit_steps import paint
from live_server import server  # noqa: F401 (the UI over ``studio``, on 127.0.0.1)
from PIL import Image
from sqlalchemy import text
from support.chromium import signed_in_page

# slow (about 40 s); the journeys (tests/e2e/test_journeys.py) reject with a region in the default run
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "e2e" / "artifacts"
BUSY = """() => [...document.querySelectorAll("#review-region [data-testid='status-tracker']")].some((w) => {
  const r = w.getBoundingClientRect();
  return !w.classList.contains("hide") && getComputedStyle(w).opacity !== "0" && r.width > 0 && r.height > 0;
})"""


@pytest.fixture
def page(server: str) -> Iterator[Any]:  # noqa: F811
    last = ARTIFACTS / "review-region-last.png"
    with signed_in_page(server, "rex", PASSWORD, size=(1366, 900), last=last) as tab:
        yield tab


def _ready(page: Any, showing: str) -> None:
    """The queue shows ``showing`` (``Image 1 of 2``) and the region editor is not busy (bounded)."""
    page.locator("#review-facts").get_by_text(showing).wait_for(timeout=60_000)
    page.wait_for_timeout(500)
    with contextlib.suppress(Exception):  # the old editor could stay "processing": paint anyway
        page.wait_for_function(f"() => !({BUSY})()", timeout=20_000)
    page.wait_for_timeout(1000)


def _reject(page: Any, image_id: int, comment: str) -> str:
    """Reject the shown image ``image_id`` with ``comment``; the outcome line."""
    page.locator("#review-comment textarea").fill(comment)
    page.locator("#review-reject").click()
    line = page.locator("#review-outcome").get_by_text(f"#{image_id}: pending → rejected")
    line.wait_for(timeout=60_000)
    return str(line.inner_text())


def _marked(studio: Any, image_id: int) -> list[tuple[str, tuple[int, ...], float]]:
    """The regions marked on ``image_id``: comment, mask shape, the marked pixels' mean column (0..1)."""
    found = []
    for region in studio.editing.regions(REX, image_id):
        mask = np.asarray(Image.open(region.mask_path).convert("L")) >= 128
        columns = np.nonzero(mask)[1]
        where = float(columns.mean() / mask.shape[1]) if len(columns) else -1.0
        found.append((region.comment, mask.shape, where))
    return found


def test_the_region_painted_after_the_queue_reloads_is_the_one_saved(studio: Any, page: Any) -> None:
    from studio.services.generation import GenerateInput

    def make(prompt: str, seed: int, size: str) -> int:
        ask = GenerateInput(brand="toy", prompt=prompt, seed=seed, size=size, steps=4)
        return studio.generation.generate(MIA, ask).images[0].id

    square, banner = make("a red circle", 1, "square"), make("a blue square", 2, "banner")
    last = make("a green star", 3, "square")
    with studio.engine.begin() as conn:  # one palette flag: the queue is oldest first
        conn.execute(text("update images set palette_flag = 0"))
    page.get_by_role("tab", name="Review").click()
    page.get_by_role("button", name="Refresh queue").click()

    _ready(page, "Image 1 of 3")
    paint(page, "review-region", half_width=12, dx=-40, settle_first=False)  # left of the middle
    assert "region" in _reject(page, square, "left part")
    assert _marked(studio, square) == [("left part", (64, 64), pytest.approx(0.33, abs=0.17))]

    _ready(page, "Image 1 of 2")  # the queue reloaded after the decision: the banner now
    paint(page, "review-region", half_width=12, dx=40, settle_first=False)  # right of the middle
    outcome = _reject(page, banner, "right part")
    assert "region" in outcome, f"the region painted after the reload was not sent: {outcome}"
    assert _marked(studio, banner) == [("right part", (64, 112), pytest.approx(0.6, abs=0.15))]

    _ready(page, "Image 1 of 1")
    paint(page, "review-region", half_width=12, settle_first=False)
    page.get_by_role("button", name="Refresh queue").click()  # a reload drops what was not sent
    page.wait_for_timeout(2000)  # the same image again: nothing on the page says the reload is done
    _ready(page, "Image 1 of 1")
    assert "region" not in _reject(page, last, "no region this time")
    assert _marked(studio, last) == []
    assert len(_marked(studio, square)) == 1, "nothing posted twice"
