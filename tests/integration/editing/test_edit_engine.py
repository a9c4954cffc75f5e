"""Edits on the engine (studio.engine.edit) with the embedded model and the tiny family pipelines: one copy of
the model, exact pixels outside the mask and under an expand, regenerate pixel for pixel, refusals first."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from engine_fixtures import FAMILY_BUILDERS, fast_cpu, lora_files, save_pipeline, sd1_dir  # noqa: F401
from PIL import Image, ImageDraw

from studio.engine.edit import changed_pixels, edit_images, plan_edit
from studio.engine.edit_request import EditRequest, edit_request_from_recipe
from studio.engine.generate import Engine, GenerationCancelled
from studio.engine.request import ControlSpec, GenerationRequest, LoraSpec
from studio.errors import ValidationError
from studio.toyworld import world

PROMPT = "a red circle on a white background, center"


@pytest.fixture(scope="module")
def engine(fast_cpu: None) -> Engine:  # noqa: F811
    return Engine("embedded:toyworld", device="cpu")


@pytest.fixture(scope="module")
def source() -> Image.Image:
    return world.render(world.Scene("red", "circle", "white", "center"))


def _request(prompt: str = PROMPT, steps: int = 6, **extra: object) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, guidance_scale=5.0, num_inference_steps=steps, seed=11, **extra)


def _box(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    return mask


def _again(engine: Engine, request: EditRequest, made: object) -> Image.Image:
    """The edit made again from its recipe alone (and its source, mask and control maps)."""
    recipe = made.recipe  # type: ignore[attr-defined]
    maps = {
        entry.control_image_sha256: unit.image
        for entry, unit in zip(recipe.controls, request.generation.controls, strict=True)
    }
    again = edit_request_from_recipe(recipe, request.source, request.mask, control_images=maps)
    return edit_images(engine, again)[0].image


def test_edit_pipelines_share_the_resident_model(engine: Engine) -> None:
    loaded = engine.load()
    base = loaded.pipe
    for task, name in (
        ("img2img", "StableDiffusionImg2ImgPipeline"),
        ("inpaint", "StableDiffusionInpaintPipeline"),
    ):
        pipe = engine.pipelines.pipeline_for(loaded, task)
        assert type(pipe).__name__ == name
        for component in ("unet", "vae", "text_encoder", "tokenizer"):
            assert getattr(pipe, component) is getattr(base, component), (task, component)
        assert engine.pipelines.pipeline_for(loaded, task) is pipe  # built once
    control = engine.pipelines.control_pipeline(loaded, ["embedded:toyworld"])
    inpaint_control = engine.pipelines.pipeline_for(loaded, "inpaint", ["embedded:toyworld"])
    assert type(inpaint_control).__name__ == "StableDiffusionControlNetInpaintPipeline"
    assert inpaint_control.unet is base.unet and inpaint_control.controlnet is control.controlnet


def test_img2img_keeps_the_size_and_regenerates_identically(engine: Engine, source: Image.Image) -> None:
    request = EditRequest("img2img", source, _request(), strength=0.5, parent_image_id=4)
    steps: list[tuple[int, int]] = []
    [made] = edit_images(engine, request, progress=lambda step, total: steps.append((step, total)))
    assert made.image.size == (64, 64) and changed_pixels(source, made.image) > 0
    assert steps[-1] == (3, 3)  # strength 0.5 of 6 steps
    entry = made.recipe.edit
    assert (entry.kind, entry.strength, entry.parent_image_id) == ("img2img", 0.5, 4)
    assert changed_pixels(made.image, _again(engine, request, made)) == 0


def test_inpaint_changes_nothing_outside_the_mask(engine: Engine, source: Image.Image) -> None:
    mask = _box((64, 64), (20, 20, 43, 43))
    request = EditRequest("inpaint", source, _request("a blue circle"), mask=mask, mask_blur=4)
    [made] = edit_images(engine, request)
    outside = np.asarray(mask) < 128
    assert changed_pixels(source, made.image, outside) == 0
    assert changed_pixels(source, made.image, ~outside) > 0
    assert made.recipe.edit.mask_blur == 4 and made.recipe.edit.mask_sha256
    assert changed_pixels(made.image, _again(engine, request, made)) == 0


@pytest.mark.parametrize(
    ("anchor", "offset"), [("center", (32, 0)), ("left", (0, 0)), ("bottom-right", (64, 32))]
)
def test_expand_keeps_the_source_pixels(
    engine: Engine, source: Image.Image, anchor: str, offset: tuple[int, int]
) -> None:
    height = 96 if anchor == "bottom-right" else 64
    request = EditRequest("expand", source, _request(width=128, height=height), anchor=anchor)
    [made] = edit_images(engine, request)
    assert made.image.size == (128, height)
    left, top = offset
    assert changed_pixels(source, made.image.crop((left, top, left + 64, top + 64))) == 0
    assert (made.recipe.edit.anchor, made.recipe.width, made.recipe.height) == (anchor, 128, height)
    if anchor == "center":
        assert changed_pixels(made.image, _again(engine, request, made)) == 0


def test_upscale_in_one_pass_and_in_tiles(engine: Engine, source: Image.Image) -> None:
    request = EditRequest("upscale", source, _request(), scale=2)
    [made] = edit_images(engine, request)
    assert made.image.size == (128, 128) and made.recipe.edit.tile_size == 0
    assert changed_pixels(made.image, _again(engine, request, made)) == 0
    tiled = EditRequest("upscale", source, _request(steps=4), scale=2, tile_size=64, tile_overlap=16)
    steps: list[tuple[int, int]] = []
    [made] = edit_images(engine, tiled, progress=lambda step, total: steps.append((step, total)))
    assert made.image.size == (128, 128)
    assert (made.recipe.edit.tile_size, made.recipe.edit.tile_overlap) == (64, 16)
    assert steps[-1] == (9, 9)  # 9 tiles of 64 with a 16-pixel overlap, 1 step each (0.3 of 4)
    assert changed_pixels(made.image, _again(engine, tiled, made)) == 0


def test_edits_with_a_controlnet_template(engine: Engine, source: Image.Image) -> None:
    unit = ControlSpec("embedded:toyworld", world.canny(source), 1.0, 0.0, 1.0)
    request = EditRequest("img2img", source, _request(controls=(unit,)), strength=0.6)
    [made] = edit_images(engine, request)
    assert made.recipe.controls[0].controlnet == "embedded:toyworld"
    assert changed_pixels(made.image, _again(engine, request, made)) == 0


def test_refusals_come_before_anything_runs(engine: Engine, source: Image.Image) -> None:
    odd = Image.new("RGB", (60, 64), "white")
    cases = [
        (EditRequest("img2img", odd, _request()), "source: 60x64 is not a size this model makes"),
        (EditRequest("inpaint", source, _request(), mask=Image.new("L", (32, 32), 255)), "mask: is 32x32"),
        (EditRequest("expand", source, _request()), "size: choose the size to expand to"),
        (EditRequest("expand", source, _request(width=48, height=64)), "size: 48x64 is smaller"),
        (EditRequest("expand", source, _request(width=72, height=64)), "width: 72 is not accepted"),
        (EditRequest("img2img", source, _request(width=128)), "width: a img2img makes a 64x64 image"),
        (EditRequest("img2img", b"nope", _request()), "source: upload: not a readable image"),
        (EditRequest("img2img", source, _request(steps=2), strength=0.3), "strength: 0.3 of 2 steps"),
    ]
    for request, message in cases:
        with pytest.raises(ValidationError, match=message):
            plan_edit(engine, request)


def test_a_cancel_stops_the_edit(engine: Engine, source: Image.Image) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(GenerationCancelled):
        edit_images(engine, EditRequest("img2img", source, _request()), cancel=cancel)


def _sd3_with_16_latent_channels(folder: Path) -> Path:
    """The tiny SD3 pipeline with 16 latent channels, as real SD3 has (diffusers' SD3 inpainting pipeline
    accepts no other; the shared fixture has 4)."""
    from diffusers import AutoencoderKL, SD3Transformer2DModel

    pipe = FAMILY_BUILDERS["sd3"]()
    config = dict(pipe.transformer.config)
    config.update(in_channels=16, out_channels=16)
    vae_config = dict(pipe.vae.config)
    vae_config.update(latent_channels=16)
    pipe.register_modules(
        transformer=SD3Transformer2DModel.from_config(config), vae=AutoencoderKL.from_config(vae_config)
    )
    return save_pipeline(pipe, folder / "model")


@pytest.mark.parametrize("family", sorted(FAMILY_BUILDERS))
def test_every_family_edits(family: str, tmp_path_factory: pytest.TempPathFactory, fast_cpu: None) -> None:  # noqa: F811
    from engine_fixtures import family_dir

    if family == "sd3":
        folder = _sd3_with_16_latent_channels(tmp_path_factory.mktemp("sd3-16"))
    else:
        folder = family_dir(family, tmp_path_factory)
    engine = Engine(str(folder), device="cpu")
    multiple = engine.model_info().size_multiple
    side = 8 * multiple if multiple < 8 else 2 * multiple
    picture = Image.new("RGB", (side, side), "white")
    ImageDraw.Draw(picture).ellipse((side // 4, side // 4, 3 * side // 4, 3 * side // 4), fill="red")
    mask = _box((side, side), (side // 4, side // 4, side // 2, side // 2))
    base = GenerationRequest(prompt="a red circle", num_inference_steps=2, seed=3)
    for request in (
        EditRequest("img2img", picture, base, strength=0.5),
        EditRequest("inpaint", picture, base, mask=mask),
        EditRequest("expand", picture, replace(base, width=side + 2 * multiple, height=side)),
        EditRequest("upscale", picture, base, scale=2, strength=0.5),
    ):
        [made] = edit_images(engine, request)
        assert made.recipe.family == family and made.recipe.edit.kind == request.kind
        if request.kind == "inpaint":
            assert changed_pixels(picture, made.image, np.asarray(mask) < 128) == 0
        if request.kind == "expand":
            assert changed_pixels(picture, made.image.crop((multiple, 0, multiple + side, side))) == 0
        assert changed_pixels(made.image, _again(engine, request, made)) == 0, (family, request.kind)
    pipe = engine.pipelines.pipeline_for(engine.load(), "inpaint")
    denoiser = "transformer" if family in ("sd3", "flux") else "unet"
    assert getattr(pipe, denoiser) is getattr(engine.load().pipe, denoiser)


def test_edit_source_can_be_a_file(engine: Engine, source: Image.Image, tmp_path: Path) -> None:
    path = tmp_path / "source.png"
    source.save(path)
    [made] = edit_images(engine, EditRequest("img2img", path, _request(steps=2), strength=0.5))
    assert (
        made.recipe.edit.source_sha256
        == plan_edit(engine, EditRequest("img2img", source, _request())).entry.source_sha256
    )


def test_a_brand_lora_applies_to_edits(sd1_dir: Path, lora_files: dict[str, Path], fast_cpu: None) -> None:  # noqa: F811
    engine = Engine(str(sd1_dir), device="cpu")
    picture = Image.new("RGB", (32, 32), "white")
    base = GenerationRequest(prompt="a red circle", num_inference_steps=2, seed=3)
    plain = edit_images(engine, EditRequest("img2img", picture, base, strength=0.9))[0]
    styled = replace(base, loras=(LoraSpec("a", lora_files["a"], None, 1.0),))
    [made] = edit_images(engine, EditRequest("img2img", picture, styled, strength=0.9))
    assert changed_pixels(plain.image, made.image) > 0 and made.recipe.loras[0].name == "a"
    assert engine.pipelines.pipeline_for(engine.load(), "img2img").unet is engine.load().pipe.unet
