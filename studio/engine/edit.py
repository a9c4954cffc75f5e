"""Run an :class:`~studio.engine.edit_request.EditRequest` on the engine's resident pipeline.

Example::

    engine = Engine("embedded:toyworld")
    request = EditRequest("inpaint", "in.png", GenerationRequest(prompt="a blue circle", seed=7),
                          mask="mask.png")
    [edited] = edit_images(engine, request)
    edited.image.save("out.png", pnginfo=png_metadata(edited.recipe))

The pipelines are diffusers' AutoPipelineForImage2Image / AutoPipelineForInpainting built ``from_pipe`` the
resident base pipeline (or its ControlNet variant), through :meth:`Engine.pipeline
<studio.engine.generate.Engine.pipeline>`: one copy of the model, with the request's LoRAs and ControlNet
templates applied. Where the model is not an inpainting model (4 latent channels: every family the studio
loads), diffusers' inpainting pipelines blend the latents with the mask at every step. The decoded picture
is then laid over the source by the mask (:mod:`studio.engine.edit_masks`), so pixels outside the painted
mask, and an expanded image's source pixels, are the source's exactly.

Every pipeline call has its own CPU generator seeded with the image's seed, as for text-to-image, so the
recipe (which records the edit in :class:`~studio.engine.recipe.EditEntry`) makes the same pixels again.
"""

from __future__ import annotations

import inspect
import threading
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from PIL import Image

from studio.engine.control import image_sha256, load_image
from studio.engine.edit_masks import (
    Tile,
    blend_tiles,
    composite,
    composite_alpha,
    expand_canvas,
    keep_colours,
    load_mask,
    pipeline_mask,
    resize,
    tile_boxes,
)
from studio.engine.edit_request import EditRequest, check_colour_sigma, check_edit_fields, effective_steps
from studio.engine.generate import Engine, GeneratedImage, GenerationCancelled, Prepared, ProgressCallback
from studio.engine.generate import step_callback as make_step_callback
from studio.engine.model_info import ModelInfo
from studio.engine.recipe import EditEntry
from studio.errors import ValidationError

#: an upscale is tiled when its longer side is over TILE_FACTOR × the model's native side; tiles are that
#: big and overlap by a quarter of the native side (A1111's "SD upscale" uses the native size and 64 px)
TILE_FACTOR = 2


@dataclass(frozen=True)
class PlannedEdit:
    """A checked edit: the pictures it starts from and everything the pipeline calls need."""

    kind: str
    prepared: Prepared
    task: str  # img2img or inpaint
    strength: float
    steps: int  # denoising steps each call runs at this strength
    init: Image.Image  # what the pipeline starts from: the source, the expand canvas, the resized source
    mask: Image.Image | None  # the painted mask (inpaint) or the new area (expand)
    mask_blur: int
    tiles: tuple[Tile, ...]
    tile_overlap: int
    colour_sigma: float  # keep the starting picture's colours below this radius (0: off)
    entry: EditEntry


def plan_edit(engine: Engine, request: EditRequest) -> PlannedEdit:
    """Check ``request`` completely (every refusal before anything runs, each naming its field) and work out
    the output size, the starting picture, the masks and the tiles."""
    kind, strength, blur, anchor, scale = check_edit_fields(request)
    source = load_image(request.source, "source")
    generation = request.generation
    info = engine.model_info(generation.model, generation.model_revision)
    mask: Image.Image | None = None
    painted: Image.Image | None = None
    if kind == "expand":
        if generation.width is None or generation.height is None:
            raise ValidationError("size", "choose the size to expand to")
        prepared = engine.prepare(generation)
        init, mask, _ = expand_canvas(source, (prepared.width, prepared.height), anchor)
    else:
        size = (source.width * scale, source.height * scale) if kind == "upscale" else source.size
        _check_size(info, size, "scale" if kind == "upscale" else "source")
        for name, wanted, given in (
            ("width", size[0], generation.width),
            ("height", size[1], generation.height),
        ):
            if given is not None and given != wanted:
                raise ValidationError(name, f"a {kind} makes a {size[0]}x{size[1]} image, not {given}")
        prepared = engine.prepare(replace(generation, width=size[0], height=size[1]))
        init = resize(source, size) if kind == "upscale" else source
        if kind == "inpaint":
            painted = mask = load_mask(request.mask, source.size)  # type: ignore[arg-type]
    steps = effective_steps(int(prepared.request.num_inference_steps), strength)
    tile, overlap = _tiling(info, kind, (prepared.width, prepared.height), request)
    tiles = tuple(tile_boxes((prepared.width, prepared.height), tile, overlap)) if tile else ()
    sigma = check_colour_sigma(request.colour_sigma, kind, scale, strength)
    entry = EditEntry(
        kind=kind,
        strength=strength,
        source_sha256=request.source_sha256 or image_sha256(source),
        parent_image_id=request.parent_image_id,
        mask_sha256=(request.mask_sha256 or image_sha256(painted)) if painted is not None else None,
        mask_blur=blur if kind in ("inpaint", "expand") else None,
        anchor=anchor if kind == "expand" else None,
        scale=scale if kind == "upscale" else None,
        tile_size=tile if kind == "upscale" else None,
        tile_overlap=overlap if tile else None,
        colour_sigma=sigma or None,
    )
    task = "inpaint" if kind in ("inpaint", "expand") else "img2img"
    return PlannedEdit(kind, prepared, task, strength, steps, init, mask, blur, tiles, overlap, sigma, entry)


def _check_size(info: ModelInfo, size: tuple[int, int], field: str) -> None:
    multiple = info.size_multiple
    if size[0] % multiple or size[1] % multiple:
        raise ValidationError(
            field,
            f"{size[0]}x{size[1]} is not a size this model makes: each side must be a multiple of {multiple}",
        )


def _tiling(info: ModelInfo, kind: str, size: tuple[int, int], request: EditRequest) -> tuple[int, int]:
    """(tile side, overlap) of an upscale; (0, 0) when it runs in one pass."""
    if kind != "upscale":
        return 0, 0
    native = max(info.default_width, info.default_height)
    tile = TILE_FACTOR * native if request.tile_size is None else int(request.tile_size)
    overlap = native // 4 if request.tile_overlap is None else int(request.tile_overlap)
    if tile <= 0 or max(size) <= tile:
        return 0, 0
    if tile % info.size_multiple or not 0 <= overlap < tile // 2:
        raise ValidationError("tile_size", f"{tile} (overlap {overlap}) does not fit this model")
    return tile, overlap


def edit_images(
    engine: Engine,
    request: EditRequest,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> list[GeneratedImage]:
    """Make ``request.generation.batch_size`` edited images (seeds seed, seed+1, …) with their recipes.

    ``progress(step, total)`` counts the denoising steps actually run (``strength`` × steps per call, per
    tile); ``cancel`` stops within one step (:class:`GenerationCancelled`, carrying the finished images).
    """
    plan = plan_edit(engine, request)
    prepared = plan.prepared
    batch = int(prepared.request.batch_size)
    calls = max(1, len(plan.tiles))
    if cancel is not None and cancel.is_set():
        raise GenerationCancelled("edit cancelled before it started")
    with engine.pipeline(prepared, plan.task) as (pipe, loaded, info):
        images: list[Image.Image] = []
        try:
            for index in range(batch):
                done = plan.steps * calls * index
                images.append(_edit_one(engine, pipe, info, plan, index, done, progress, cancel))
        except GenerationCancelled as cancelled:
            finished = tuple(_with_entry(engine, plan, loaded, images))
            raise GenerationCancelled(str(cancelled), finished, batch) from None
    return _with_entry(engine, plan, loaded, images)


def _with_entry(
    engine: Engine, plan: PlannedEdit, loaded: Any, images: list[Image.Image]
) -> list[GeneratedImage]:
    return [
        replace(result, recipe=replace(result.recipe, edit=plan.entry))
        for result in engine.results(plan.prepared, loaded, images)
    ]


def _edit_one(
    engine: Engine,
    pipe: Any,
    info: ModelInfo,
    plan: PlannedEdit,
    index: int,
    done: int,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
) -> Image.Image:
    """One edited image: one pipeline call, or one per tile, all drawing from one seeded CPU generator."""
    prepared = plan.prepared
    generator = torch.Generator("cpu").manual_seed(prepared.seed + index)
    total = plan.steps * max(1, len(plan.tiles)) * int(prepared.request.batch_size)
    size = (prepared.width, prepared.height)
    if not plan.tiles:
        box = Tile(0, 0, *size)
        kwargs = _call_kwargs(
            pipe, info, plan, box, generator, make_step_callback(progress, cancel, done, plan.steps, total)
        )
        picture = engine.call(pipe, prepared, kwargs, index, cancel)
        if plan.mask is not None:
            return composite(plan.init, picture, composite_alpha(plan.mask, plan.mask_blur))
        return keep_colours(plan.init, picture.convert("RGB"), plan.colour_sigma)

    def tiles() -> Any:
        for number, box in enumerate(plan.tiles):
            callback = make_step_callback(progress, cancel, done + number * plan.steps, plan.steps, total)
            kwargs = _call_kwargs(pipe, info, plan, box, generator, callback)
            yield box, engine.call(pipe, prepared, kwargs, index, cancel)

    return keep_colours(plan.init, blend_tiles(size, tiles(), plan.tile_overlap), plan.colour_sigma)


def _call_kwargs(
    pipe: Any, info: ModelInfo, plan: PlannedEdit, box: Tile, generator: torch.Generator, callback: Any
) -> dict[str, Any]:
    """The arguments of one image-to-image or inpainting call over ``box`` of the output."""
    req = plan.prepared.request
    crop = (box.left, box.top, box.left + box.width, box.top + box.height)
    kwargs: dict[str, Any] = {
        "prompt": req.prompt,
        "image": plan.init.crop(crop),
        "strength": plan.strength,
        "guidance_scale": float(req.guidance_scale),
        "num_inference_steps": int(req.num_inference_steps),
        "num_images_per_prompt": 1,
        "generator": generator,
        "callback_on_step_end": callback,
        "output_type": "pil",
    }
    accepted = inspect.signature(pipe.__call__).parameters
    if "width" in accepted:  # the inpainting pipelines and FLUX's image-to-image one take a size
        kwargs["width"], kwargs["height"] = box.width, box.height
    if info.supports_negative_prompt:
        kwargs["negative_prompt"] = req.negative_prompt or None
    if plan.mask is not None:
        cell = int(getattr(pipe, "vae_scale_factor", 8)) * (2 if info.family == "flux" else 1)
        kwargs["mask_image"] = pipeline_mask(plan.mask, plan.mask_blur, cell).crop(crop)
    if req.controls:
        kwargs["control_image"] = [control.crop(crop) for control in plan.prepared.control_maps]
        kwargs["controlnet_conditioning_scale"] = [float(unit.scale) for unit in req.controls]
        kwargs["control_guidance_start"] = [float(unit.start) for unit in req.controls]
        kwargs["control_guidance_end"] = [float(unit.end) for unit in req.controls]
    return kwargs


def changed_pixels(before: Image.Image, after: Image.Image, where: np.ndarray | None = None) -> int:
    """How many pixels differ between two same-sized pictures (only where ``where`` is true, if given)."""
    a = np.asarray(before.convert("RGB"))
    b = np.asarray(after.convert("RGB"))
    if a.shape != b.shape:
        raise ValueError(f"sizes differ: {before.size} vs {after.size}")
    differs = (a != b).any(axis=-1)
    return int(differs[where].sum() if where is not None else differs.sum())
