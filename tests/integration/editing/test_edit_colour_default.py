"""Image-to-image at low strength keeps the source's colours by default (issue 19: the embedded model's VAE
round trip alone moves hues across colour-name borders); off at high strength; ``colour_sigma=0`` turns it
off; the radius used is in the recipe, so a regenerate is identical; the A1111 text has no line for it, as
A1111 writes none for its own img2img colour correction."""

from __future__ import annotations

import pytest
from engine_fixtures import fast_cpu  # noqa: F401
from PIL import Image

from studio.engine.edit import changed_pixels, edit_images, plan_edit
from studio.engine.edit_masks import keep_colours
from studio.engine.edit_request import (
    IMG2IMG_COLOUR_SIGMA,
    IMG2IMG_KEEP_COLOURS_UP_TO,
    EditRequest,
    default_colour_sigma,
    edit_request_from_recipe,
)
from studio.engine.generate import Engine
from studio.engine.request import GenerationRequest
from studio.toyworld import world

PROMPT = "a red circle on a white background, center"


@pytest.fixture(scope="module")
def engine(fast_cpu: None) -> Engine:  # noqa: F811
    return Engine("embedded:toyworld", device="cpu")


@pytest.fixture(scope="module")
def source() -> Image.Image:
    return world.render(world.Scene("red", "circle", "white", "center"))


def _request(prompt: str = PROMPT) -> GenerationRequest:
    return GenerationRequest(prompt=prompt, guidance_scale=5.0, num_inference_steps=6, seed=11)


def test_the_default_keeps_colours_for_low_strength_img2img_only() -> None:
    assert IMG2IMG_KEEP_COLOURS_UP_TO == 0.5 and IMG2IMG_COLOUR_SIGMA > 0
    assert default_colour_sigma("img2img", 2, 0.3) == IMG2IMG_COLOUR_SIGMA
    assert default_colour_sigma("img2img", 2, 0.5) == IMG2IMG_COLOUR_SIGMA
    assert default_colour_sigma("img2img", 2, None) == IMG2IMG_COLOUR_SIGMA  # the kind's default, 0.5
    assert default_colour_sigma("img2img", 2, 0.51) == 0.0
    assert default_colour_sigma("img2img", 2, 0.9) == 0.0
    assert default_colour_sigma("upscale", 2, 0.3) == 4.0  # unchanged
    assert default_colour_sigma("inpaint", 2, 0.3) == default_colour_sigma("expand", 2, 0.3) == 0.0


def test_low_strength_img2img_keeps_colours_by_default_and_regenerates_identically(
    engine: Engine, source: Image.Image
) -> None:
    request = EditRequest("img2img", source, _request(), strength=0.3)
    assert plan_edit(engine, request).colour_sigma == IMG2IMG_COLOUR_SIGMA
    [made] = edit_images(engine, request)
    assert made.recipe.edit is not None and made.recipe.edit.colour_sigma == IMG2IMG_COLOUR_SIGMA
    [plain] = edit_images(engine, EditRequest("img2img", source, _request(), strength=0.3, colour_sigma=0))
    assert plain.recipe.edit is not None and plain.recipe.edit.colour_sigma is None  # off, as recorded
    # the default is exactly the plain edit with the source's colours laid under it
    assert changed_pixels(made.image, keep_colours(source, plain.image, IMG2IMG_COLOUR_SIGMA)) == 0
    assert changed_pixels(made.image, plain.image) > 0
    for result in (made, plain):
        again = edit_request_from_recipe(result.recipe, source)
        assert changed_pixels(result.image, edit_images(engine, again)[0].image) == 0
    parameters = made.recipe.parameters_text()
    assert "Denoising strength: 0.3" in parameters
    assert "olor correction" not in parameters and "olour" not in parameters  # A1111 writes no such line


def test_high_strength_img2img_keeps_nothing(engine: Engine, source: Image.Image) -> None:
    request = EditRequest(
        "img2img", source, _request("a blue circle on a white background, center"), strength=0.9
    )
    assert plan_edit(engine, request).colour_sigma == 0.0
    assert (
        plan_edit(
            engine, EditRequest("img2img", source, _request(), strength=0.9, colour_sigma=3)
        ).colour_sigma
        == 3
    )
