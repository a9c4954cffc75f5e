"""The Review tab's part of editing (issue 19): under the image, a ``gr.ImageEditor`` to mark the region to
fix (sent with **Reject**: the marketer's "Fix region" then inpaints it), the image's lineage (parent and
children, as in the Gallery) and, for an image of a campaign group (one image expanded to every channel
size), **Approve the campaign group**: the group's pending images in one decision (or one by one with the
queue, as ever). Each handler makes one service call for its own part.

The region editor is never an event's output. Gradio's frontend re-reads (and re-uploads) every component that
has been an output of an event whenever any event's status changes; for an ImageEditor each re-read reloads
the editor, so strokes painted after the queue reloaded were lost, or the editor stayed "processing". The
``show`` event therefore only names the shown image (a hidden JSON: its address and a fresh token), and a
browser-only event (``js``, no server call) puts that image in the editor as its background with no strokes:
after every reload, the editor holds the shown image and nothing painted before.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.services.container import Services
from studio.ui import lineage_block
from studio.ui.common import actor_of, shown_to_user
from studio.ui.editor_masks import MASK_COLOUR, painted_mask
from studio.ui.file_access import image_link
from studio.ui.lineage_block import LineageBlock
from studio.ui.text import escape_markdown as text


@dataclass
class ReviewEdits:
    """The components under the review image."""

    region: gr.ImageEditor
    shown: gr.JSON  # hidden: the shown image's address and a fresh token (fills ``region`` in the browser)
    lineage: LineageBlock
    group_btn: gr.Button
    group: gr.State

    @property
    def outputs(self) -> list[Any]:
        return [self.shown, *self.lineage.outputs, self.group, self.group_btn]


#: The region editor's value for the shown image (``{url, name, token}``; null: no image): its background, no
#: strokes. Run in the browser only, so the editor is never an event's output (see the module's docstring).
FILL_REGION_JS = """(shown) => (shown && shown.url ? {
  background: {path: shown.name, url: shown.url, orig_name: shown.name, meta: {_type: "gradio.FileData"}},
  layers: [], composite: null,
} : null)"""

_tokens = itertools.count(1)


def render() -> ReviewEdits:
    """Build the block (call it under the review image)."""
    region = gr.ImageEditor(
        label="Mark the region to fix (optional, saved with Reject)",
        type="pil",
        sources=(),
        transforms=(),
        layers=False,
        format="png",
        brush=gr.Brush(colors=[MASK_COLOUR], default_size=6, color_mode="fixed"),
        height=300,
        elem_id="review-region",
        elem_classes=["pixel-art"],
    )
    shown = gr.JSON(visible=False, elem_id="review-region-shown")
    shown.change(None, shown, region, js=FILL_REGION_JS, queue=False, api_visibility="private")
    lineage = lineage_block.render(actions=False, prefix="review")
    group = gr.State([])
    group_btn = gr.Button("Approve the campaign group", visible=False, elem_id="review-approve-group")
    return ReviewEdits(region, shown, lineage, group_btn, group)


def _current(ids: list[int] | None, index: Any) -> int | None:
    if not ids:
        return None
    return ids[max(0, min(int(index or 0), len(ids) - 1))]


def with_lineage(services: Services, edits: ReviewEdits, showing: dict[str, Any]) -> dict[str, Any]:
    """The review tab's ``show`` event extended with this block: the image to mark, its lineage and group
    (the handler keeps its name, ``show``, for the permission table)."""
    show, lineage = showing["fn"], edits.lineage.handler(services)

    def with_edits(ids: list[int], index: int, request: gr.Request) -> list[Any]:
        shown = list(show(ids, index, request))
        image_id = _current(ids, index)
        if image_id is None:
            blank = [{"url": None, "token": next(_tokens)}, "", [], None, [], gr.update(visible=False)]
            return shown + blank
        with shown_to_user():
            path = services.gallery.detail(actor_of(request), image_id).item.path
            mine = lineage(image_id, request)
            found = services.editing.lineage(actor_of(request), image_id)
        members = [found.image, *found.group] if found.image.edit and found.image.edit.group_id else []
        pending = [m.image.id for m in members if m.image.review_status == "pending"]
        button = gr.update(
            visible=len(pending) > 1, value=f"Approve the campaign group ({len(pending)} pending)"
        )
        image = {"url": image_link(request, image_id), "name": path.name, "token": next(_tokens)}
        return shown + [image, *mine, pending, button]

    with_edits.__name__ = with_edits.__qualname__ = show.__name__
    return {**showing, "fn": with_edits, "outputs": [*showing["outputs"], *edits.outputs]}


def with_region(services: Services, decide: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
    """Reject, then save the painted region (if any) on the rejected image with the comment. Inputs: the
    queue ids, the position, the comment, the region editor (last, so that API clients that send only the
    comment, as before regions, still work)."""

    def handler(
        ids: list[int], index: int, comment: str, region: Any = None, request: gr.Request | None = None
    ) -> list[Any]:
        shown = decide(ids, index, comment, request)
        mask = painted_mask(region)
        image_id = _current(ids, index)
        if mask is None or image_id is None:
            return shown
        with shown_to_user():
            marked = services.editing.mark_region(actor_of(request), image_id, mask, comment or "")
        return [f"{shown[0]} · region **#{marked.id}** marked to fix", *shown[1:]]

    handler.__name__ = handler.__qualname__ = decide.__name__
    return handler


def approve_group(services: Services) -> Callable[..., str]:
    """Approve the shown campaign group's pending images at once (others in it are left as they are)."""

    def approve_group(pending: list[int], request: gr.Request) -> str:
        if not pending:
            raise gr.Error("Open an image of a campaign group first.")
        with shown_to_user():
            result = services.review.decide_many(actor_of(request), pending, "approve", "")
        lines = [f"Campaign group: approved **{len(result.decided)}** image(s)."]
        lines += [f"- #{text(image_id)} skipped: {text(reason)}" for image_id, reason in result.skipped]
        return "\n".join(lines)

    return approve_group
