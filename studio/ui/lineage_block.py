"""An image's lineage (issue 19) where an image is shown (Gallery, Review): the image it was made from (and
how: kind, strength, mask blur, anchor, scale), the images made from it, its campaign group, and the regions
reviewers marked on it. In the Gallery it also holds **Edit** (the Generate tab in edit mode on the image)
and **Fix region** (inpainting with the newest marked region). Each handler makes one service call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.services.container import Services
from studio.services.editing_views import EditView, Lineage, LineageItem, RegionView
from studio.ui import edit_panel
from studio.ui.common import actor_of, shown_to_user
from studio.ui.file_access import image_link
from studio.ui.text import escape_markdown as text

KIND_NAMES = {"img2img": "image-to-image", "inpaint": "inpainting", "expand": "expand", "upscale": "upscale"}


def how_made(edit: EditView) -> str:
    """``inpainting (strength 1, mask blur 4)`` and the like."""
    parts = [f"strength {edit.strength:g}"]
    if edit.kind == "inpaint" and edit.mask_blur is not None:
        parts.append(f"mask blur {edit.mask_blur}")
    if edit.kind == "expand" and edit.anchor:
        parts.append(f"anchor {edit.anchor}")
    if edit.kind == "upscale" and edit.scale:
        parts.append(f"×{edit.scale}")
    return f"{KIND_NAMES.get(edit.kind, edit.kind)} ({', '.join(parts)})"


def _ref(item: LineageItem) -> str:
    i = item.image
    return f"#{i.id} {i.width}×{i.height} {i.review_status}"


def lineage_markdown(lineage: Lineage, regions: tuple[RegionView, ...] = ()) -> str:
    """The lineage as a few lines: made from, made into, campaign group, marked regions."""
    lines: list[str] = []
    own = lineage.image.edit
    if own is None:
        lines.append("Made from text (no parent).")
    elif lineage.ancestors:
        chain = " ← ".join(_ref(a) for a in lineage.ancestors)
        lines.append(f"**Parent:** {how_made(own)} of {chain}")
    else:
        lines.append(f"**Parent:** {how_made(own)} of an uploaded file or an image you cannot see")
    if lineage.hidden_ancestor and lineage.ancestors:
        lines.append("_Older ancestors are not visible to you._")
    if lineage.children:
        made = ", ".join(
            f"{_ref(c)} ({KIND_NAMES.get(c.edit.kind, c.edit.kind) if c.edit else '?'})"
            for c in lineage.children
        )
        lines.append(f"**Children ({len(lineage.children)}):** {made}")
    else:
        lines.append("**Children:** none yet.")
    if own is not None and own.group_id:
        others = ", ".join(_ref(g) for g in lineage.group) or "no other image"
        lines.append(f"**Campaign group** `{own.group_id[:8]}`: this image and {others}")
    for region in regions:
        note = f": “{text(region.comment)}”" if region.comment else ""
        lines.append(
            f"**Region #{region.id}** marked by {text(region.marked_by)} "
            f"{region.created_at:%Y-%m-%d %H:%M}{note}"
        )
    return "\n\n".join(lines)


def lineage_cells(lineage: Lineage, request: gr.Request) -> list[tuple[str, str]]:
    """Gallery cells: the parent, the image, its children and its group (each once)."""
    cells: list[tuple[str, str]] = []
    seen: set[int] = set()

    def add(item: LineageItem, role: str) -> None:
        if item.image.id not in seen:
            seen.add(item.image.id)
            cells.append((image_link(request, item.image.id), f"#{item.image.id} {role}"))

    for ancestor in reversed(lineage.ancestors):
        add(ancestor, "parent" if ancestor is lineage.ancestors[0] else "ancestor")
    add(lineage.image, "this image")
    for child in lineage.children:
        add(child, f"child · {child.edit.kind if child.edit else ''}")
    for other in lineage.group:
        add(other, "same campaign")
    return cells


@dataclass
class LineageBlock:
    """The block's components (see :func:`render`) and the handler that fills them for an image id."""

    summary: gr.Markdown
    grid: gr.Gallery
    region: gr.State
    edit_btn: gr.Button | None
    fix_btn: gr.Button | None

    @property
    def outputs(self) -> list[Any]:
        shown: list[Any] = [self.summary, self.grid, self.region]
        return shown + ([self.fix_btn] if self.fix_btn is not None else [])

    def handler(self, services: Services) -> Any:
        """``(image_id, request) → outputs``: the lineage of a visible image (nothing when none is open)."""
        with_fix = self.fix_btn is not None

        def show_lineage(image_id: int | None, request: gr.Request) -> list[Any]:
            if image_id is None:
                raise gr.Error("Open an image first.")
            actor = actor_of(request)
            with shown_to_user():
                lineage = services.editing.lineage(actor, int(image_id))
                regions = services.editing.regions(actor, int(image_id))
            newest = regions[0].id if regions else None
            shown = [lineage_markdown(lineage, regions), lineage_cells(lineage, request), newest]
            return shown + ([gr.update(visible=newest is not None)] if with_fix else [])

        return show_lineage


def render(*, actions: bool, prefix: str) -> LineageBlock:
    """The block: the lineage line(s) and a strip of the related images; with ``actions`` the Edit and Fix
    region buttons (wired by :func:`connect_actions` once the Generate tab exists)."""
    with gr.Accordion("Lineage", open=True, elem_id=f"{prefix}-lineage-box"):
        summary = gr.Markdown(elem_id=f"{prefix}-lineage")
        grid = gr.Gallery(
            label="Parent, this image, children",
            columns=6,
            height="auto",
            format="png",
            object_fit="contain",
            interactive=False,
            allow_preview=False,
            buttons=[],
            elem_id=f"{prefix}-lineage-grid",
            elem_classes=["pixel-grid"],
        )
        region = gr.State(None)
        edit_btn = fix_btn = None
        if actions:
            with gr.Row():
                edit_btn = gr.Button("Edit", elem_id=f"{prefix}-edit")
                fix_btn = gr.Button("Fix region", visible=False, elem_id=f"{prefix}-fix-region")
    return LineageBlock(summary, grid, region, edit_btn, fix_btn)


def connect_actions(
    block: LineageBlock,
    current: gr.State,
    message: gr.Markdown,
    parts: dict[str, dict[str, Any]],
    tab_set: gr.Tabs,
) -> None:
    """Wire Edit and Fix region to the Generate tab's edit panel (the part holding an ``edit_target``)."""
    found = next(((name, p["edit_target"]) for name, p in parts.items() if "edit_target" in p), None)
    if found is None or block.edit_btn is None or block.fix_btn is None:
        return
    title, target = found
    edit_panel.wire_open(block.edit_btn, current, None, message, tab_set, title, target)
    edit_panel.wire_open(block.fix_btn, current, block.region, message, tab_set, title, target)
