"""The Generate tab's edit mode (issue 19): a gallery image loaded as the source of an edit.

The Gallery's **Edit** (and **Fix region**, which opens inpainting with the region a reviewer marked) call
:meth:`EditTarget.open`; the panel then shows at the top of the Generate tab with the image in a
``gr.ImageEditor``: pick the kind — image-to-image (strength), inpaint (paint the region; mask blur), expand
(a size preset of the brand, or ``WIDTHxHEIGHT`` where allowed, and an anchor), upscale (×2 / ×4) — edit the
prompt (the source's, as typed) and **Apply edit**. **Expand to all channel sizes** makes one image per
larger size preset of an approved image (a campaign group). Every rule is the editing service's: who may
edit, banned terms, limits, review; each handler makes one service call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image as PILImage

from studio.errors import PermissionDeniedError, StudioError, ValidationError
from studio.services.container import Services
from studio.services.editing_input import EditInput
from studio.services.editing_views import CampaignResult, EditView
from studio.services.views import Actor
from studio.ui import edit_api
from studio.ui.common import actor_of, markdown_message, shown_to_user
from studio.ui.editor_masks import MASK_COLOUR, painted_mask, region_shown, with_region
from studio.ui.file_access import image_link

KINDS = [
    ("Image to image", "img2img"),
    ("Inpaint (paint the region)", "inpaint"),
    ("Expand", "expand"),
    ("Upscale", "upscale"),
]
#: the denoising strength each kind starts at (the engine's defaults)
STRENGTHS = {"img2img": 0.5, "inpaint": 1.0, "expand": 1.0, "upscale": 0.3}
ANCHORS = ["center", "left", "right", "top", "bottom", "top-left", "top-right", "bottom-left", "bottom-right"]


@dataclass(frozen=True)
class EditTarget:
    """The edit panel, for another tab to open in three events (see :func:`wire_open`):
    ``open(actor, image_id, request, region_id)`` returns one value per component of ``outputs`` (a refusal
    propagates: reviewers, unless reviewers may edit); ``reveal`` then shows the panel, and ``fill`` puts the
    source image in its editor (``reveal`` and ``fill`` are an event's keyword arguments).

    An ImageEditor sizes its canvas once, when it is first drawn: drawn while its tab was still hidden (the
    first Edit of a user whose Generate tab had never been shown, such as a reviewer), the canvas stayed 0×0
    and showed nothing. So ``reveal`` waits in the browser until the panel's tab is on screen, and ``fill``
    until the editor's canvas has a size."""

    outputs: tuple[Any, ...]
    open: Callable[[Actor, int, gr.Request, int | None], list[Any]]
    reveal: dict[str, Any]
    fill: dict[str, Any]


def _wait_in_browser(ready: str, params: str, result: str) -> str:
    """An event's ``js``: poll ``ready`` (a JS expression) each 50 ms, up to 20 s; then return ``result``."""
    return f"""async ({params}) => {{
  for (let i = 0; i < 400 && !({ready}); i++) await new Promise((done) => setTimeout(done, 50));
  return {result};
}}"""


#: ``reveal`` waits until the edit panel's tab is on screen (its anchor has a layout box)
WAIT_FOR_TAB_JS = _wait_in_browser(
    'document.querySelector("#edit-anchor")?.offsetParent', "imageId", "imageId"
)
#: ``fill`` waits until the editor's canvas has a size
WAIT_FOR_EDITOR_JS = _wait_in_browser(
    '((c) => c && c.width > 0 && c.offsetParent)(document.querySelector("#edit-source canvas"))',
    "imageId, regionId",
    "[imageId, regionId]",
)


def _seed(text: Any) -> int | None:
    value = str(text or "").strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 12:
        raise ValidationError("seed", "a whole number, or blank for a random one")
    return int(value)


def results(views: tuple[EditView, ...] | list[EditView], request: gr.Request) -> list[tuple[str, str]]:
    """Gallery cells: the new images with their kind and size."""
    return [
        (
            image_link(request, v.image.id),
            f"#{v.image.id} {v.kind} {v.image.width}×{v.image.height} from #{v.parent_image_id}",
        )
        for v in views
    ]


def campaign_message(result: CampaignResult) -> str:
    sizes = ", ".join(f"#{v.image.id} {v.image.width}×{v.image.height}" for v in result.edits)
    skipped = "; ".join(f"{name} ({why})" for name, why in result.skipped)
    stopped = " Cancelled part way: the images made so far are kept." if result.cancelled else ""
    return (
        f"Expanded #{result.parent_image_id} to **{len(result.edits)}** channel size(s) as campaign group "
        f"`{result.group_id[:8]}`: {sizes} (pending review)."
        + (f" Left out: {skipped}." if skipped else "")
        + stopped
    )


def render(services: Services) -> dict[str, Any]:  # noqa: PLR0915 - the panel's components and events
    """Build the panel (hidden until an image is opened for editing) and the edit API endpoints."""
    editing, gallery = services.editing, services.gallery
    edit_api.register(services)
    gr.HTML("", elem_id="edit-anchor", container=False)  # on screen exactly when the panel's tab is
    with gr.Group(visible=False, elem_id="edit-panel") as panel:
        header = gr.Markdown(elem_id="edit-header")
        with gr.Row(equal_height=False):
            with gr.Column(scale=2):
                kind = gr.Radio(KINDS, value="img2img", label="Edit kind", elem_id="edit-kind")
                prompt = gr.Textbox(label="Edit prompt", lines=2, elem_id="edit-prompt")
                negative = gr.Textbox(
                    label="Edit negative prompt", info="Blank: the source image's.", elem_id="edit-negative"
                )
                strength = gr.Slider(
                    0.05, 1, value=STRENGTHS["img2img"], step=0.05, label="Strength",
                    info="Denoising strength: low keeps the picture, 1 redraws it.", elem_id="edit-strength",
                )  # fmt: skip
                with gr.Group(visible=False) as inpaint_box:
                    mask_blur = gr.Slider(0, 32, value=4, step=1, label="Mask blur", elem_id="edit-mask-blur")
                    region_note = gr.Markdown(elem_id="edit-region-note")
                with gr.Group(visible=False) as expand_box:
                    size = gr.Dropdown(
                        label="Expand to", choices=[], allow_custom_value=True, elem_id="edit-size",
                        info="A size preset of the brand (or WIDTHxHEIGHT where custom sizes are allowed).",
                    )  # fmt: skip
                    anchor = gr.Dropdown(ANCHORS, value="center", label="Anchor", elem_id="edit-anchor")
                with gr.Group(visible=False) as upscale_box:
                    scale = gr.Radio([("×2", 2), ("×4", 4)], value=2, label="Upscale", elem_id="edit-scale")
                seed = gr.Textbox(label="Edit seed", placeholder="random", elem_id="edit-seed")
                with gr.Row():
                    apply_btn = gr.Button("Apply edit", variant="primary", elem_id="edit-apply")
                    campaign_btn = gr.Button("Expand to all channel sizes", elem_id="edit-campaign")
                    close_btn = gr.Button("Leave edit mode", elem_id="edit-close")
            with gr.Column(scale=3):
                source = gr.ImageEditor(
                    label="Source (inpainting: paint the region to repaint)",
                    type="pil",
                    sources=(),
                    transforms=(),
                    layers=False,
                    format="png",
                    brush=gr.Brush(colors=[MASK_COLOUR], default_size=6, color_mode="fixed"),
                    height=360,
                    elem_id="edit-source",
                    elem_classes=["pixel-art"],
                )
                message = gr.Markdown(elem_id="edit-message")
                made = gr.Gallery(
                    label="Edited",
                    columns=4,
                    height="auto",
                    format="png",
                    object_fit="contain",
                    interactive=False,
                    buttons=["download", "fullscreen"],
                    elem_id="edit-results",
                    elem_classes=["pixel-grid"],
                )
        source_id = gr.State(None)
        region_id = gr.State(None)

    def kind_changed(chosen: str) -> list[Any]:
        return [
            STRENGTHS.get(chosen, 0.5),
            gr.update(visible=chosen == "inpaint"),
            gr.update(visible=chosen == "expand"),
            gr.update(visible=chosen == "upscale"),
        ]

    def open_image(actor: Actor, image_id: int, request: gr.Request, region: int | None = None) -> list[Any]:
        """The panel filled with a visible image (a reviewer who may not edit is refused here)."""
        item = gallery.detail(actor, image_id).item
        sizes = [(f"{n} ({w}×{h})", n) for n, w, h in editing.sizes(actor, image_id)]  # refuses non-editors
        note = ""
        chosen = "inpaint" if region is not None else "img2img"
        if region is not None:
            note = f"Fixing region **#{region}** a reviewer marked (shown in magenta; paint to add to it)."
        return [
            f"### Edit mode · image #{item.id} ({item.brand_slug}, {item.width}×{item.height}, "
            f"{item.review_status})",
            item.id,
            region,
            chosen,
            item.prompt,
            "",
            STRENGTHS[chosen],
            gr.update(visible=chosen == "inpaint"),
            note,
            gr.update(visible=False),
            gr.update(choices=sizes, value=sizes[0][1] if sizes else None),
            gr.update(visible=False),
            [],
            "",
        ]

    outputs = (
        header, source_id, region_id, kind, prompt, negative, strength, inpaint_box, region_note,
        expand_box, size, upscale_box, made, message,
    )  # fmt: skip

    def fill_source(image_id: int | None, region: int | None, request: gr.Request) -> Any:
        """The editor's value: the opened image; on Fix region, the picture shown has the marked region
        tinted (the strokes painted then add to the region: :func:`with_region`)."""
        if image_id is None:
            return gr.skip()
        with shown_to_user():
            actor = actor_of(request)
            path = gallery.detail(actor, int(image_id)).item.path
            shown = None
            if region is not None:
                with PILImage.open(path) as source:
                    shown = region_shown(source, editing.region_mask(actor, int(region)))
        return {"background": str(path), "layers": [], "composite": shown}

    def reveal_panel(image_id: int | None) -> Any:
        return gr.update(visible=True) if image_id is not None else gr.skip()

    reveal = {"fn": reveal_panel, "inputs": [source_id], "outputs": panel, "js": WAIT_FOR_TAB_JS}
    fill = {"fn": fill_source, "inputs": [source_id, region_id], "outputs": source, "js": WAIT_FOR_EDITOR_JS}

    def request_of(  # noqa: PLR0913
        actor: Actor,
        image_id: int | None,
        region: int | None,
        chosen: str,
        text: str,
        negative_text: str,
        strength_v: float,
        editor: Any,
        blur: float,
        size_v: str | None,
        anchor_v: str,
        scale_v: int,
        seed_v: str,
    ) -> EditInput:
        if image_id is None:
            raise ValidationError("image_id", "open an image from the Gallery with Edit first")
        fields: dict[str, Any] = {
            "kind": chosen,
            "image_id": int(image_id),
            "prompt": text or None,
            "negative_prompt": negative_text or None,
            "strength": float(strength_v),
            "seed": _seed(seed_v),
        }
        if chosen == "inpaint":
            mask = painted_mask(editor)
            fields["mask_blur"] = int(blur)
            if region is not None and (mask is None or _same_region(actor, mask, region)):
                fields["region_id"] = int(region)
            elif region is not None:  # strokes painted on Fix region add to the marked region
                fields["mask"] = with_region(mask, editing.region_mask(actor, int(region)))
            else:
                fields["mask"] = mask
        elif chosen == "expand":
            fields.update(size=size_v or None, anchor=anchor_v or "center")
        elif chosen == "upscale":
            fields["scale"] = int(scale_v)
        return EditInput(**fields)

    def _same_region(actor: Actor, mask: PILImage.Image, region: int) -> bool:
        marked = np.asarray(editing.region_mask(actor, region).convert("L")) >= 128
        painted = np.asarray(mask)[..., 3] >= 128
        return marked.shape == painted.shape and bool((marked == painted).all())

    def apply(  # noqa: PLR0913 (Gradio passes each field as a parameter)
        image_id: int | None,
        region: int | None,
        chosen: str,
        text: str,
        negative_text: str,
        strength_v: float,
        editor: Any,
        blur: float,
        size_v: str | None,
        anchor_v: str,
        scale_v: int,
        seed_v: str,
        request: gr.Request,
    ) -> list[Any]:
        fields = [image_id, region, chosen, text, negative_text, strength_v, editor, blur, size_v, anchor_v]
        fields += [scale_v, seed_v]
        with shown_to_user():
            actor = actor_of(request)
            if fields[0] is None:  # nothing opened: an error, never a run
                raise ValidationError("image_id", "open an image from the Gallery with Edit first")
            try:
                view = editing.edit(actor, request_of(actor, *fields))
            except StudioError as error:
                if isinstance(error, PermissionDeniedError):
                    raise
                gr.Warning(str(error))
                return [gr.skip(), f"Not edited: {markdown_message(error)}"]
        done = (
            f"Made **#{view.image.id}** by {view.kind} from #{view.parent_image_id} "
            f"({view.image.width}×{view.image.height}, pending review)."
        )
        return [results([view], request), done]

    def expand_all(
        image_id: int | None, text: str, anchor_v: str, seed_v: str, request: gr.Request
    ) -> list[Any]:
        with shown_to_user():
            if image_id is None:
                raise ValidationError(
                    "image_id", "open an image first: an approved one, from the Gallery with Edit"
                )
            ask = EditInput(
                "expand", image_id=int(image_id), prompt=text or None, anchor=anchor_v or "center",
                seed=_seed(seed_v),
            )  # fmt: skip
            try:
                result = editing.expand_to_all_presets(actor_of(request), ask)
            except ValidationError as error:
                gr.Warning(str(error))
                return [gr.skip(), f"Not expanded: {markdown_message(error)}"]
        return [results(result.edits, request), campaign_message(result)]

    quiet = {"show_progress": "hidden", "api_visibility": "private"}
    kind.change(kind_changed, kind, [strength, inpaint_box, expand_box, upscale_box], **quiet)
    inputs = [
        source_id,
        region_id,
        kind,
        prompt,
        negative,
        strength,
        source,
        mask_blur,
        size,
        anchor,
        scale,
        seed,
    ]
    apply_btn.click(lambda: "Editing…", None, message, queue=False, api_visibility="private").then(
        apply, inputs, [made, message], concurrency_id="gpu", api_visibility="private"
    )
    campaign_btn.click(
        lambda: "Expanding to every channel size…", None, message, queue=False, api_visibility="private"
    ).then(
        expand_all, [source_id, prompt, anchor, seed], [made, message], concurrency_id="gpu",
        api_visibility="private",
    )  # fmt: skip
    close_btn.click(
        lambda: (gr.update(visible=False), None, None), None, [panel, source_id, region_id], **quiet
    )
    return {"edit_target": EditTarget(outputs=outputs, open=open_image, reveal=reveal, fill=fill)}


def wire_open(
    button: gr.Button,
    image: gr.State,
    region_state: gr.State | None,
    shown: Any,
    tab_set: gr.Tabs,
    tab: str,
    target: EditTarget,
) -> None:
    """``button`` opens the Generate tab (``tab``) in edit mode on the image in ``image`` (with the region
    in ``region_state``: Fix region); those who may not edit get the reason in ``shown`` (a Markdown)."""

    def open_for_edit(image_id: int | None, region: int | None, request: gr.Request) -> list[Any]:
        with shown_to_user():
            if image_id is None:
                raise gr.Error("Open an image first.")
            try:
                filled = target.open(actor_of(request), int(image_id), request, region)
            except PermissionDeniedError as refused:
                return [markdown_message(refused), gr.skip(), *[gr.skip()] * len(target.outputs)]
        what = f"region #{region} of #{image_id}" if region is not None else f"#{image_id}"
        return [f"Editing {what} in the Generate tab.", gr.Tabs(selected=tab), *filled]

    def open_image_for_edit(image_id: int | None, request: gr.Request) -> list[Any]:
        return open_for_edit(image_id, None, request)

    open_image_for_edit.__name__ = "open_for_edit"  # one row in the permission table
    button.click(
        open_for_edit if region_state is not None else open_image_for_edit,
        [image, region_state] if region_state is not None else [image],
        [shown, tab_set, *target.outputs],
        show_progress="hidden",
        api_visibility="private",
    ).success(**target.reveal, show_progress="hidden", api_visibility="private").success(
        **target.fill, show_progress="hidden", api_visibility="private"
    )
