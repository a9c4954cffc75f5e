"""Named API endpoints for editing (issue 19), by keyword, like ``/generate_api``: anything left out (or
None) is the source image's setting or the brand's default, as in ``studio edit``.

* ``/edit_img2img_api``: ``image_id``, ``prompt``, ``strength`` (0-1) and the generation fields;
* ``/edit_inpaint_api``: ``image_id`` and a ``mask`` (a PNG, base64 or a ``data:`` URL; painted or white
  pixels = repaint, the image's size) or a ``region_id`` (a region a reviewer marked), ``mask_blur``;
* ``/edit_expand_api``: ``image_id``, ``size`` (a size preset, or ``WIDTHxHEIGHT`` where custom sizes are
  allowed) or ``width``/``height``, ``anchor`` (center, left, right, top, bottom, top-left, …);
* ``/edit_upscale_api``: ``image_id``, ``scale`` (2 or 4);
* ``/expand_all_api``: an approved image expanded to every larger size preset of its brand (a campaign:
  one image per preset, sharing a ``group_id``);
* ``/lineage_api``: an image's parent chain, children and campaign group.

Each edit answers JSON: the new image (id, seed, pixel hash, status, a download link on this site) and how it
was made (kind, parent, strength, mask blur, anchor, scale, group). Errors are the service's messages, each
naming its field.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import gradio as gr

from studio.errors import ValidationError
from studio.services.editing_input import EditInput
from studio.services.editing_views import CampaignResult, EditView, Lineage, LineageItem
from studio.ui.common import actor_of, shown_to_user
from studio.ui.file_access import image_link

MAX_MASK_BYTES = 16 * 1024 * 1024


def mask_bytes(mask: str | None) -> bytes | None:
    """A mask given as base64 text (or a ``data:image/png;base64,…`` URL) → its bytes; None when left out."""
    if mask is None or mask == "":
        return None
    if not isinstance(mask, str):
        raise ValidationError("mask", "give the mask as a base64 PNG (or a data: URL)")
    text = mask.split(",", 1)[1] if mask.startswith("data:") else mask
    if len(text) > MAX_MASK_BYTES * 4 // 3 + 4:
        raise ValidationError("mask", f"is over {MAX_MASK_BYTES // (1024 * 1024)} MB")
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError("mask", "is not base64 text: give a base64 PNG (or a data: URL)") from None


def _whole(value: Any, name: str) -> int | None:
    """An optional whole number (a client's 3.0 is fine); anything else is a ValidationError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise ValidationError(name, f"must be a whole number, not {value!r}")
    return int(value)


def image_json(item: Any, request: gr.Request | None) -> dict[str, Any]:
    """An image (an :class:`ImageView`) for API clients."""
    return {
        "id": item.id,
        "brand": item.brand_slug,
        "seed": item.seed,
        "width": item.width,
        "height": item.height,
        "review_status": item.review_status,
        "pixel_sha256": item.pixel_sha256,
        "palette_score": item.palette_score,
        "url": image_link(request, item.id),
    }


def edit_json(view: EditView, request: gr.Request | None) -> dict[str, Any]:
    """An edited image and how it was made."""
    return {
        "image": image_json(view.image, request),
        "kind": view.kind,
        "parent_image_id": view.parent_image_id,
        "strength": view.strength,
        "mask_blur": view.mask_blur,
        "anchor": view.anchor,
        "scale": view.scale,
        "group_id": view.group_id,
    }


def campaign_json(result: CampaignResult, request: gr.Request | None) -> dict[str, Any]:
    """A campaign: the images made (one per size preset) and the presets left out, with why."""
    return {
        "group_id": result.group_id,
        "parent_image_id": result.parent_image_id,
        "images": [edit_json(view, request) for view in result.edits],
        "skipped": [{"size": name, "why": why} for name, why in result.skipped],
        "cancelled": result.cancelled,
    }


def _item_json(item: LineageItem, request: gr.Request | None) -> dict[str, Any]:
    made = (
        None
        if item.edit is None
        else {k: v for k, v in edit_json(item.edit, request).items() if k != "image"}
    )
    return {"image": image_json(item.image, request), "edit": made}


def lineage_json(lineage: Lineage, request: gr.Request | None) -> dict[str, Any]:
    """An image's lineage as the caller may see it (ancestors nearest first; children oldest first)."""
    return {
        "image": _item_json(lineage.image, request),
        "ancestors": [_item_json(i, request) for i in lineage.ancestors],
        "hidden_ancestor": lineage.hidden_ancestor,
        "children": [_item_json(i, request) for i in lineage.children],
        "group": [_item_json(i, request) for i in lineage.group],
    }


def register(services: Any) -> None:  # noqa: PLR0915 - one small function per endpoint
    """Add the endpoints to the Blocks being built (call inside its context)."""
    editing = services.editing

    def run(request: gr.Request | None, **fields: Any) -> dict[str, Any]:
        with shown_to_user():
            fields["image_id"] = _whole(fields.get("image_id"), "image_id")
            if fields["image_id"] is None:
                raise ValidationError(
                    "image_id", "open an image first: give the id of a gallery image to edit"
                )
            for name in ("steps", "seed", "width", "height", "region_id", "scale", "mask_blur"):
                if name in fields:
                    fields[name] = _whole(fields[name], name)
            if fields.get("templates") is not None:
                fields["templates"] = tuple(fields["templates"])
            given = {k: v for k, v in fields.items() if v is not None}
            return edit_json(editing.edit(actor_of(request), EditInput(**given)), request)

    def edit_img2img_api(  # noqa: PLR0913
        image_id: int,
        prompt: str | None = None,
        strength: float | None = None,
        negative_prompt: str | None = None,
        cfg: float | None = None,
        steps: int | None = None,
        seed: int | None = None,
        sampler: str | None = None,
        loras: dict[str, float] | None = None,
        templates: list[str] | None = None,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict[str, Any]:
        """Image-to-image: the picture varied at ``strength`` (0 keeps it, 1 redraws it)."""
        return run(
            request, kind="img2img", image_id=image_id, prompt=prompt, strength=strength,
            negative_prompt=negative_prompt, cfg=cfg, steps=steps, seed=seed, sampler=sampler, loras=loras,
            templates=templates,
        )  # fmt: skip

    def edit_inpaint_api(  # noqa: PLR0913
        image_id: int,
        prompt: str | None = None,
        mask: str | None = None,
        region_id: int | None = None,
        mask_blur: int | None = None,
        strength: float | None = None,
        negative_prompt: str | None = None,
        cfg: float | None = None,
        steps: int | None = None,
        seed: int | None = None,
        sampler: str | None = None,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict[str, Any]:
        """Inpainting: repaint the ``mask`` (base64 PNG, painted/white = repaint) or a marked ``region_id``;
        pixels outside it stay exactly as they were."""
        with shown_to_user():
            painted = mask_bytes(mask)
        return run(
            request, kind="inpaint", image_id=image_id, prompt=prompt, mask=painted, region_id=region_id,
            mask_blur=mask_blur, strength=strength, negative_prompt=negative_prompt, cfg=cfg, steps=steps,
            seed=seed, sampler=sampler,
        )  # fmt: skip

    def edit_expand_api(  # noqa: PLR0913
        image_id: int,
        size: str | None = None,
        width: int | None = None,
        height: int | None = None,
        anchor: str | None = None,
        prompt: str | None = None,
        strength: float | None = None,
        negative_prompt: str | None = None,
        cfg: float | None = None,
        steps: int | None = None,
        seed: int | None = None,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict[str, Any]:
        """Expand to a size preset of the brand (or WIDTHxHEIGHT / width+height where custom sizes are
        allowed); the picture sits at ``anchor`` and the new area is painted."""
        return run(
            request, kind="expand", image_id=image_id, size=size, width=width, height=height,
            anchor=anchor, prompt=prompt, strength=strength, negative_prompt=negative_prompt, cfg=cfg,
            steps=steps, seed=seed,
        )  # fmt: skip

    def edit_upscale_api(  # noqa: PLR0913
        image_id: int,
        scale: int | None = None,
        strength: float | None = None,
        prompt: str | None = None,
        steps: int | None = None,
        seed: int | None = None,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict[str, Any]:
        """Upscale ×2 or ×4: a resize and a low-strength image-to-image pass (tiled when large)."""
        return run(
            request, kind="upscale", image_id=image_id, scale=scale, strength=strength, prompt=prompt,
            steps=steps, seed=seed,
        )  # fmt: skip

    def expand_all_api(
        image_id: int,
        prompt: str | None = None,
        anchor: str | None = None,
        seed: int | None = None,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict[str, Any]:
        """An approved image expanded to every larger size preset of its brand (one image each)."""
        with shown_to_user():
            given = {"image_id": _whole(image_id, "image_id"), "prompt": prompt, "anchor": anchor}
            if given["image_id"] is None:
                raise ValidationError("image_id", "open an image first: give the id of an approved image")
            given["seed"] = _whole(seed, "seed")
            ask = EditInput(kind="expand", **{k: v for k, v in given.items() if v is not None})
            return campaign_json(editing.expand_to_all_presets(actor_of(request), ask), request)

    def lineage_api(image_id: int, request: gr.Request = None) -> dict[str, Any]:  # type: ignore[assignment]
        """The image's parents (nearest first), children and campaign group, as far as the caller sees."""
        with shown_to_user():
            found = _whole(image_id, "image_id")
            if found is None:
                raise ValidationError("image_id", "open an image first: give the id of a gallery image")
            return lineage_json(editing.lineage(actor_of(request), found), request)

    for fn in (edit_img2img_api, edit_inpaint_api, edit_expand_api, edit_upscale_api, expand_all_api):
        gr.api(fn, api_name=fn.__name__, concurrency_id="gpu")
    gr.api(lineage_api, api_name="lineage_api", queue=False)
