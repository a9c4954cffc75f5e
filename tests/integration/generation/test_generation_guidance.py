"""Guidance through the generation service (issue 18): the brand's default, the request's own, recorded in
the recipe and the generation's PNG, regenerated to the same pixels, bad settings named."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from PIL import Image

from studio.engine.recipe import read_recipe
from studio.errors import ValidationError
from studio.services.brand_files import parse_brand_file
from studio.services.generation import GenerateInput
from studio.services.views import SYSTEM, Actor

MIA = Actor.user("mia")
FDG = {"method": "fdg", "fdg_low_scale": 2.0, "optimized_scale": True, "stop": 0.8}


def _with_default(studio: Any, guidance: dict | None) -> None:
    folder = studio.brands.export_brand(SYSTEM, "acme", studio.settings.home / "export")
    spec = parse_brand_file(folder / "brand.toml")
    studio.brands.update_brand(SYSTEM, "acme", dataclasses.replace(spec, default_guidance=guidance))


def _pixels(path: Any) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_the_brand_default_is_used_recorded_and_regenerated(studio: Any) -> None:
    _with_default(studio, FDG)
    assert studio.generation.options(MIA, "acme").default_guidance == FDG
    guided = studio.generation.generate(MIA, GenerateInput(brand="acme", prompt="a red circle", seed=3))
    image = guided.images[0]
    recorded = read_recipe(image.path).guidance
    assert {k: recorded[k] for k in FDG} == FDG
    plain = studio.generation.generate(
        MIA, GenerateInput(brand="acme", prompt="a red circle", seed=3, guidance={"method": "cfg"})
    )
    assert read_recipe(plain.images[0].path).guidance is None
    assert not np.array_equal(_pixels(image.path), _pixels(plain.images[0].path))
    again = studio.generation.regenerate(MIA, image.id)
    assert np.array_equal(_pixels(image.path), _pixels(again.images[0].path))


def test_a_request_asks_for_its_own_guidance(studio: Any) -> None:
    result = studio.generation.generate(
        MIA, GenerateInput(brand="acme", prompt="a red circle", seed=3, guidance={"method": "apg"})
    )
    assert read_recipe(result.images[0].path).guidance["method"] == "apg"


@pytest.mark.parametrize(
    ("guidance", "field"),
    [({"method": "apg", "apg_eta": 3}, "guidance.apg_eta"), ({"method": "x"}, "guidance.method")],
)
def test_bad_guidance_is_refused_before_anything_runs(studio: Any, guidance: dict, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        studio.generation.generate(MIA, GenerateInput(brand="acme", prompt="a red circle", guidance=guidance))
    assert err.value.field == field


def test_a_remix_keeps_the_images_guidance(studio: Any) -> None:
    _with_default(studio, FDG)
    guided = studio.generation.generate(MIA, GenerateInput(brand="acme", prompt="a red circle", seed=3))
    remix = studio.gallery.remix(MIA, guided.images[0].id)
    assert {k: remix.guidance[k] for k in FDG} == FDG
    plain = studio.generation.generate(
        MIA, GenerateInput(brand="acme", prompt="a red circle", seed=3, guidance={"method": "cfg"})
    )
    assert studio.gallery.remix(MIA, plain.images[0].id).guidance == {"method": "cfg"}
