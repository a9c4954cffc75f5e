"""An edit in the recipe (EditEntry) and in the A1111 ``parameters`` text; the edit request's own checks."""

from __future__ import annotations

import re

import pytest

from studio.engine.edit_request import (
    DEFAULT_STRENGTH,
    EditRequest,
    check_edit_fields,
    edit_request_from_recipe,
    effective_steps,
)
from studio.engine.recipe import EditEntry, Recipe
from studio.engine.request import GenerationRequest
from studio.errors import ValidationError

RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')  # A1111's infotext regex


def _recipe(edit: EditEntry | None) -> Recipe:
    return Recipe(
        base_model="embedded:toyworld",
        prompt="a red circle",
        negative_prompt="",
        sampler="Euler",
        steps=20,
        guidance_scale=5.0,
        seed=7,
        width=128,
        height=64,
        family="sd1",
        edit=edit,
    )


def _fields(recipe: Recipe) -> list[tuple[str, str]]:
    return [(k, v) for k, v in RE_PARAM.findall(recipe.parameters_text().splitlines()[-1])]


INPAINT = EditEntry("inpaint", 0.75, "ab" * 32, parent_image_id=3, mask_sha256="cd" * 32, mask_blur=4)


def test_an_edit_round_trips_through_the_recipe_json() -> None:
    recipe = _recipe(INPAINT)
    data = recipe.to_dict()
    assert data["edit"]["kind"] == "inpaint" and data["edit"]["mask_sha256"] == "cd" * 32
    assert Recipe.from_json(recipe.to_json()) == recipe
    assert "edit" not in _recipe(None).to_dict()  # a text-to-image recipe's JSON is unchanged
    with pytest.raises(ValidationError, match="recipe: edit must be a JSON object"):
        Recipe.from_dict({**_recipe(None).to_dict(), "edit": "inpaint"})


def test_parameters_say_denoising_strength_and_mask_blur_where_a1111_does() -> None:
    keys = [key for key, _ in _fields(_recipe(INPAINT))]
    values = dict(_fields(_recipe(INPAINT)))
    assert values["Denoising strength"] == "0.75" and values["Mask blur"] == "4"
    assert keys.index("Model") + 1 == keys.index("Denoising strength") < keys.index("RNG")
    assert keys.index("RNG") < keys.index("Mask blur")
    plain = dict(_fields(_recipe(EditEntry("img2img", 0.3, "ab" * 32))))
    assert plain["Denoising strength"] == "0.3" and "Mask blur" not in plain
    tiled = dict(
        _fields(_recipe(EditEntry("upscale", 0.3, "ab" * 32, scale=4, tile_size=128, tile_overlap=16)))
    )
    assert (tiled["SD upscale overlap"], tiled["SD upscale upscaler"]) == ("16", "Lanczos")
    text_only = dict(_fields(_recipe(None)))
    assert "Denoising strength" not in text_only and "Mask blur" not in text_only


def test_edit_fields_are_checked_naming_the_field() -> None:
    base = GenerationRequest(prompt="a red circle")
    assert check_edit_fields(EditRequest("img2img", b"", base))[:2] == (
        "img2img",
        DEFAULT_STRENGTH["img2img"],
    )
    cases = [
        (EditRequest("paint", b"", base), "kind: 'paint' is not an edit"),
        (EditRequest("img2img", b"", base, strength=0), "strength: 0 is outside 0-1"),
        (EditRequest("img2img", b"", base, strength=1.5), "strength: 1.5 is outside 0-1"),
        (EditRequest("inpaint", b"", base), "mask: inpainting needs a painted mask"),
        (EditRequest("upscale", b"", base, scale=3), "scale: 3 is not offered"),
        (EditRequest("expand", b"", base, anchor="middle"), "anchor: 'middle' is not an anchor"),
        (EditRequest("inpaint", b"", base, mask=b"", mask_blur=-2), "mask_blur: -2 is outside"),
    ]
    for request, message in cases:
        with pytest.raises(ValidationError, match=message):
            check_edit_fields(request)
    assert effective_steps(20, 0.3) == 6
    with pytest.raises(ValidationError, match="strength: 0.01 of 20 steps leaves no step"):
        effective_steps(20, 0.01)


def test_a_recipe_gives_back_the_edit_that_made_it() -> None:
    expand = _recipe(EditEntry("expand", 1.0, "ab" * 32, parent_image_id=9, mask_blur=2, anchor="left"))
    request = edit_request_from_recipe(expand, source=b"png")
    assert (request.kind, request.anchor, request.mask_blur, request.parent_image_id) == (
        "expand",
        "left",
        2,
        9,
    )
    assert (request.generation.width, request.generation.height, request.generation.seed) == (128, 64, 7)
    inpaint = edit_request_from_recipe(_recipe(INPAINT), source=b"png", mask=b"mask")
    assert inpaint.generation.width is None and inpaint.mask == b"mask" and inpaint.mask_sha256 == "cd" * 32
    with pytest.raises(ValidationError, match="mask: mask cdcdcdcdcdcd… is no longer available"):
        edit_request_from_recipe(_recipe(INPAINT), source=b"png")
    with pytest.raises(ValidationError, match="recipe: this image was not made by an edit"):
        edit_request_from_recipe(_recipe(None), source=b"png")
