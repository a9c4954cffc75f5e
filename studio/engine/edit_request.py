"""What to edit: :class:`EditRequest` (an image, what to do to it, and the generation settings to do it with),
its checks, and the mapping from a stored recipe back to a request.

Four kinds (issue 19), each a new image made from a source image:

* ``img2img`` — the source, re-noised to ``strength`` and denoised with the prompt (same size);
* ``inpaint`` — only the painted ``mask`` is repainted; pixels outside it stay the source's exactly;
* ``expand`` — the source placed on a larger canvas (``generation.width`` × ``generation.height``) by an
  ``anchor``; the new area is inpainted and the source's pixels stay exactly as they were;
* ``upscale`` — the source resized ×``scale`` (2 or 4) with Lanczos, then a low-strength image-to-image pass,
  in overlapping tiles when the result is large.

This module imports neither torch nor diffusers; :mod:`studio.engine.edit` runs the requests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image

from studio.engine.edit_masks import check_anchor, check_mask_blur
from studio.engine.recipe import Recipe
from studio.engine.request import GenerationRequest, number, request_from_recipe
from studio.errors import ValidationError

EDIT_KINDS: tuple[str, ...] = ("img2img", "inpaint", "expand", "upscale")
#: the denoising strength of each kind when the request gives none (A1111's img2img default is 0.75; an
#: upscale's second pass keeps the picture, as A1111's "SD upscale" does at 0.2-0.4)
DEFAULT_STRENGTH: dict[str, float] = {"img2img": 0.5, "inpaint": 1.0, "expand": 1.0, "upscale": 0.3}
UPSCALE_FACTORS: tuple[int, ...] = (2, 4)
DEFAULT_MASK_BLUR = 4  # pixels, as A1111's default
ImageSource = Image.Image | str | Path | bytes


@dataclass(frozen=True)
class EditRequest:
    """An edit of ``source`` (a PIL image, file or bytes) of one ``kind`` (:data:`EDIT_KINDS`).

    ``generation`` holds the prompt and settings (diffusers' names; its width/height are the output size of
    an expand and are left None otherwise: the others keep or scale the source's size). ``strength`` is the
    denoising strength (None: :data:`DEFAULT_STRENGTH`); ``mask`` the painted region (inpaint; white or
    painted = repaint) with ``mask_blur`` pixels of soft edge; ``anchor`` where the source sits on an
    expanded canvas; ``scale`` the upscale factor. ``source_sha256``, ``mask_sha256`` and
    ``parent_image_id`` are recorded in the recipe as given (default: the hashes of the pixels).
    ``tile_size`` / ``tile_overlap`` (upscale) override the model's defaults (a regenerate passes the
    recipe's). ``colour_sigma`` keeps the source's colours below that blur radius in pixels (img2img and
    upscale; None: :func:`default_colour_sigma`, which keeps them for an upscale and a low-strength img2img;
    0: off), as A1111's img2img colour correction does by histogram matching.
    """

    kind: str
    source: ImageSource
    generation: GenerationRequest
    strength: float | None = None
    mask: ImageSource | None = None
    mask_blur: int = DEFAULT_MASK_BLUR
    anchor: str = "center"
    scale: int = 2
    source_sha256: str | None = None
    mask_sha256: str | None = None
    parent_image_id: int | None = None
    tile_size: int | None = None
    tile_overlap: int | None = None
    colour_sigma: float | None = None


#: image-to-image at a strength up to this keeps the source's colours by default (A1111's "Apply color
#: correction to img2img results to match original colors", off there by default): a low strength asks
#: for the same picture, and the embedded model's VAE round trip alone moves hues across colour-name borders
#: in about a sixth of the benchmark grid. Above it the prompt is meant to change colours, so nothing is kept.
IMG2IMG_KEEP_COLOURS_UP_TO = 0.5
#: the blur radius (pixels) below which a low-strength image-to-image keeps the source's colours
IMG2IMG_COLOUR_SIGMA = 4.0


def default_colour_sigma(kind: str, scale: int, strength: float | None = None) -> float:
    """The colour-keeping radius when a request gives none (0: off).

    An upscale keeps the source's colours below 2 × ``scale`` pixels (the model only adds detail; the
    embedded model's VAE alone moves hues across colour-name borders); an image-to-image at ``strength``
    ≤ :data:`IMG2IMG_KEEP_COLOURS_UP_TO` keeps them below :data:`IMG2IMG_COLOUR_SIGMA` pixels (``strength``
    None: the kind's :data:`DEFAULT_STRENGTH`); other kinds and stronger image-to-image keep nothing.
    A request overrides this with ``colour_sigma=0``; the radius used is recorded in the recipe, so a
    regenerate does exactly the same whatever this default becomes."""
    if kind == "upscale":
        return 2.0 * scale
    if kind == "img2img":
        used = DEFAULT_STRENGTH[kind] if strength is None else strength
        return IMG2IMG_COLOUR_SIGMA if used <= IMG2IMG_KEEP_COLOURS_UP_TO else 0.0
    return 0.0


def check_colour_sigma(value: Any, kind: str, scale: int, strength: float | None = None) -> float:
    """The colour-keeping radius: ``value`` (0-64 pixels, only for img2img and upscale) or the default for
    ``kind`` at ``strength`` (:func:`default_colour_sigma`)."""
    if value is None:
        return default_colour_sigma(kind, scale, strength)
    sigma = number("colour_sigma", value)
    if not 0.0 <= sigma <= 64.0:
        raise ValidationError("colour_sigma", f"{sigma:g} is outside 0-64")
    if sigma and kind not in ("img2img", "upscale"):
        raise ValidationError("colour_sigma", f"keeping colours is for img2img and upscale, not {kind}")
    return sigma


def check_kind(kind: Any) -> str:
    """``kind`` if it is one of :data:`EDIT_KINDS`, else a ValidationError naming ``kind``."""
    text = str(kind or "").strip().lower()
    if text not in EDIT_KINDS:
        raise ValidationError("kind", f"{kind!r} is not an edit; use one of {', '.join(EDIT_KINDS)}")
    return text


def check_strength(value: Any, kind: str) -> float:
    """The denoising strength: ``value`` in (0, 1], or the kind's default when None."""
    if value is None:
        return DEFAULT_STRENGTH[kind]
    strength = number("strength", value)
    if not 0.0 < strength <= 1.0:
        raise ValidationError("strength", f"{strength:g} is outside 0-1 (0 would change nothing)")
    return strength


def check_scale(value: Any) -> int:
    """An upscale factor: one of :data:`UPSCALE_FACTORS`."""
    if isinstance(value, bool) or value not in UPSCALE_FACTORS:
        allowed = " or ".join(str(f) for f in UPSCALE_FACTORS)
        raise ValidationError("scale", f"{value!r} is not offered; upscale by {allowed}")
    return int(value)


def effective_steps(steps: int, strength: float) -> int:
    """How many denoising steps a pipeline runs at ``strength`` (diffusers' ``get_timesteps``); at least 1,
    else a ValidationError naming ``strength``."""
    count = min(int(steps * strength), steps)
    if count < 1:
        raise ValidationError(
            "strength",
            f"{strength:g} of {steps} steps leaves no step to run: raise the strength or the steps",
        )
    return count


def check_edit_fields(request: EditRequest) -> tuple[str, float, int, str, int]:
    """(kind, strength, mask blur, anchor, scale) of ``request``, each checked (ValidationError naming it)."""
    kind = check_kind(request.kind)
    strength = check_strength(request.strength, kind)
    blur = check_mask_blur(request.mask_blur)
    anchor = check_anchor(request.anchor)
    scale = check_scale(request.scale) if kind == "upscale" else int(request.scale or 2)
    if kind == "inpaint" and request.mask is None:
        raise ValidationError("mask", "inpainting needs a painted mask")
    return kind, strength, blur, anchor, scale


def edit_request_from_recipe(
    recipe: Recipe,
    source: ImageSource,
    mask: ImageSource | None = None,
    lora_paths: dict[str, str | Path] | None = None,
    control_images: dict[str, Image.Image | str | Path] | None = None,
) -> EditRequest:
    """The edit that makes ``recipe``'s image again from its ``source`` (and ``mask``, for an inpaint),
    pixel for pixel on the same machine. A recipe of an image made from text is refused."""
    entry = recipe.edit
    if entry is None:
        raise ValidationError("recipe", "this image was not made by an edit")
    if entry.mask_sha256 and mask is None:
        raise ValidationError("mask", f"mask {entry.mask_sha256[:12]}… is no longer available")
    generation = request_from_recipe(recipe, lora_paths, control_images)
    if entry.kind != "expand":
        generation = replace(generation, width=None, height=None)
    return EditRequest(
        kind=entry.kind,
        source=source,
        generation=generation,
        strength=entry.strength,
        mask=mask if entry.mask_sha256 else None,
        mask_blur=DEFAULT_MASK_BLUR if entry.mask_blur is None else entry.mask_blur,
        anchor=entry.anchor or "center",
        scale=entry.scale or 2,
        source_sha256=entry.source_sha256,
        mask_sha256=entry.mask_sha256,
        parent_image_id=entry.parent_image_id,
        tile_size=entry.tile_size,
        tile_overlap=entry.tile_overlap,
        colour_sigma=entry.colour_sigma or 0.0,
    )
