"""What a user asks for to edit an image (:class:`EditInput`), and how it becomes a generation input for the
brand's planner: an edit of a gallery image starts from that image's settings (its prompt as typed, negative
prompt, CFG, steps, sampler, guidance and LoRA weights); whatever the input gives replaces them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image as PILImage

from studio.db.generation_models import Generation
from studio.db.models import Brand
from studio.engine.edit_request import DEFAULT_MASK_BLUR, check_kind, check_scale
from studio.errors import ValidationError
from studio.services.generation_input import GenerateInput

ImageSource = bytes | str | Path | PILImage.Image


@dataclass(frozen=True)
class EditInput:
    """One edit. ``kind``: img2img, inpaint, expand or upscale.

    The source is a gallery image (``image_id``, one the actor may see) or a file (``source``: PNG/JPEG
    bytes, a path or a PIL image, with ``brand`` naming the brand it is for). ``None`` fields take the
    source image's settings (a file's: the brand's defaults; a file needs a ``prompt``).

    - ``strength``: denoising strength 0-1 (None: the kind's default, see
      :data:`studio.engine.edit_request.DEFAULT_STRENGTH`);
    - inpaint: ``mask`` (white or painted pixels = repaint; the source's size) or ``region_id`` (a region a
      reviewer marked on the image), and ``mask_blur`` pixels of soft edge inside the mask;
    - expand: ``size`` (a preset name of the brand, or ``WIDTHxHEIGHT`` where custom sizes are allowed) or
      ``width`` and ``height``, and the ``anchor`` where the source sits (center, left, right, top, bottom,
      top-left, top-right, bottom-left, bottom-right);
    - upscale: ``scale`` 2 or 4;
    - ``colour_sigma``: keep the source's colours below this blur radius (img2img and upscale; None: the
      kind's default: an upscale and an img2img at strength <= 0.5 keep them, 0 turns it off; see
      :func:`studio.engine.edit_request.default_colour_sigma`);
    - ``loras`` (adapter → weight) and ``templates`` (layout template names) as for generating.
    """

    kind: str
    image_id: int | None = None
    source: ImageSource | None = None
    brand: str | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    strength: float | None = None
    mask: ImageSource | None = None
    region_id: int | None = None
    mask_blur: int = DEFAULT_MASK_BLUR
    size: str | None = None
    width: int | None = None
    height: int | None = None
    anchor: str = "center"
    scale: int = 2
    cfg: float | None = None
    steps: int | None = None
    seed: int | None = None
    sampler: str | None = None
    loras: Mapping[str, float] | None = None
    templates: Sequence[str] = ()
    guidance: Mapping[str, Any] | None = None
    colour_sigma: float | None = None


def output_size(kind: str, source: tuple[int, int], planned: Any, scale: Any) -> tuple[int, int]:
    """The edited image's size: the planned request's (expand: the preset or custom size), the source's
    times ``scale`` (upscale), or the source's."""
    if kind == "expand":
        return int(planned.width or 0), int(planned.height or 0)
    if kind == "upscale":
        factor = check_scale(scale)
        return source[0] * factor, source[1] * factor
    return source


def check_source(request: EditInput) -> str:
    """The edit kind, once the input names exactly one source (and a brand for a file)."""
    kind = check_kind(request.kind)
    if (request.image_id is None) == (request.source is None):
        raise ValidationError("image_id", "give either a gallery image or a file to edit")
    if request.source is not None and not (isinstance(request.brand, str) and request.brand.strip()):
        raise ValidationError("brand", "choose the brand the file is for")
    if kind != "inpaint" and (request.mask is not None or request.region_id is not None):
        raise ValidationError("mask", f"a mask is for inpainting, not for {kind}")
    if kind == "inpaint" and request.mask is not None and request.region_id is not None:
        raise ValidationError("mask", "give a painted mask or a marked region, not both")
    if kind == "expand" and request.size is None and (request.width is None or request.height is None):
        raise ValidationError("size", "choose the size to expand to (a size preset, or width and height)")
    if kind != "expand" and (
        request.size is not None or request.width is not None or request.height is not None
    ):
        what = "keeps the image's size" if kind != "upscale" else "sets the size by its scale"
        raise ValidationError("size", f"{kind} {what}; only expand takes a size")
    return kind


def generate_input(
    request: EditInput, brand: Brand, parent: Generation | None, recipe: Mapping[str, Any] | None
) -> GenerateInput:
    """The planner's input for ``request`` on ``brand``: the parent image's settings (``parent`` and its
    ``recipe`` JSON) where the request leaves a field None; a file edit starts from the brand's defaults."""
    recipe = recipe or {}

    def pick(given: Any, inherited: Any) -> Any:
        return given if given is not None else inherited

    loras: Mapping[str, float] | None = request.loras
    guidance = request.guidance
    if parent is not None:
        if loras is None:  # the parent's LoRAs at their weights; the brand's others left out
            used = {lora.adapter_name: lora.weight for lora in parent.loras}
            loras = {a.name: used.get(a.name, 0.0) for a in brand.adapters}
        if guidance is None:  # plain CFG said outright, so the brand's default does not replace it
            guidance = recipe.get("guidance") or {"method": "cfg"}
    return GenerateInput(
        brand=brand.slug,
        prompt=pick(request.prompt, parent.prompt if parent is not None else None) or "",
        negative_prompt=pick(request.negative_prompt, parent.negative_prompt if parent is not None else ""),
        cfg=pick(request.cfg, recipe.get("guidance_scale")),
        steps=pick(request.steps, recipe.get("steps")),
        seed=request.seed,
        sampler=pick(request.sampler, recipe.get("sampler")),
        size=request.size,
        width=request.width,
        height=request.height,
        loras=dict(loras or {}),
        templates=tuple(request.templates),
        batch_size=1,
        guidance=guidance,
    )


def campaign_presets(
    presets: Sequence[Mapping[str, Any]], size: tuple[int, int]
) -> tuple[list[str], list[tuple[str, str]]]:
    """The size presets an image of ``size`` expands to (at least as large on both sides, not its own size),
    and the others with why they are left out."""
    todo: list[str] = []
    skipped: list[tuple[str, str]] = []
    for preset in presets:
        name, width, height = str(preset["name"]), int(preset["width"]), int(preset["height"])
        if (width, height) == size:
            skipped.append((name, "the image's own size"))
        elif width < size[0] or height < size[1]:
            skipped.append((name, f"{width}x{height} is smaller than the image on one side"))
        else:
            todo.append(name)
    return todo, skipped
