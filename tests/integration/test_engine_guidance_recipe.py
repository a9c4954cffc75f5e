"""Guidance through the engine: every family's tiny model generates with it, the recipe records it, a
regenerate from the recipe makes the same pixels, FLUX (distilled guidance) refuses it clearly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from engine_fixtures import family_dir, fast_cpu  # noqa: F401

from studio.engine.generate import Engine
from studio.engine.guidance import Guidance
from studio.engine.recipe import Recipe
from studio.engine.request import GenerationRequest, request_from_recipe
from studio.errors import ValidationError

FDG = Guidance(method="fdg", fdg_low_scale=1.0, optimized_scale=True)


def _engine(family: str, factory: pytest.TempPathFactory) -> Engine:
    return Engine(str(family_dir(family, factory)), device="cpu")


def _request(**extra: object) -> GenerationRequest:
    base = dict(prompt="a red circle", seed=4, num_inference_steps=3, width=32, height=32, guidance_scale=5.0)
    return GenerationRequest(**{**base, **extra})


@pytest.mark.parametrize("family", ["sd1", "sdxl", "sd3"])
@pytest.mark.parametrize(
    "guidance",
    [FDG, Guidance(method="apg", apg_momentum=-0.5, apg_norm_threshold=2.0), Guidance(rescale=0.7)],
    ids=["fdg", "apg", "rescale"],
)
def test_guided_image_is_recorded_and_regenerated(
    family: str,
    guidance: Guidance,
    tmp_path_factory: pytest.TempPathFactory,
    fast_cpu: None,  # noqa: F811
) -> None:
    engine = _engine(family, tmp_path_factory)
    plain = engine.generate(_request())[0]
    first = engine.generate(_request(guidance=guidance))[0]
    assert not np.array_equal(np.asarray(plain.image), np.asarray(first.image))
    assert first.recipe.guidance == guidance.to_dict()
    recipe = Recipe.from_json(first.recipe.to_json())
    again = engine.generate(request_from_recipe(recipe))[0]
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))


def test_plain_cfg_leaves_the_recipe_json_as_before(
    tmp_path_factory: pytest.TempPathFactory,
    fast_cpu: None,  # noqa: F811
) -> None:
    engine = _engine("sd1", tmp_path_factory)
    result = engine.generate(_request(guidance=Guidance()))[0]
    assert result.recipe.guidance is None
    assert "guidance" not in json.loads(result.recipe.to_json())
    assert request_from_recipe(result.recipe).guidance is None


def test_guidance_given_as_a_dict_is_checked(
    tmp_path_factory: pytest.TempPathFactory,
    fast_cpu: None,  # noqa: F811
) -> None:
    engine = _engine("sd1", tmp_path_factory)
    assert engine.validate(_request(guidance={"method": "fdg"})).guidance == Guidance(method="fdg")
    with pytest.raises(ValidationError) as err:
        _request(guidance={"method": "apg", "apg_eta": 2.0})
    assert err.value.field == "guidance.apg_eta"


def test_flux_refuses_guidance_it_cannot_apply(
    tmp_path_factory: pytest.TempPathFactory,
    fast_cpu: None,  # noqa: F811
) -> None:
    engine = _engine("flux", tmp_path_factory)
    with pytest.raises(ValidationError) as err:
        engine.validate(_request(guidance=FDG))
    assert err.value.field == "guidance"
    assert "distilled" in str(err.value)
    assert engine.validate(_request(guidance=Guidance())).guidance is None


def test_a_recipe_with_malformed_guidance_is_refused(tmp_path: Path) -> None:
    data = json.loads(Recipe("m", "p", "", "Euler", 2, 5.0, 1, 32, 32, guidance={"method": "fdg"}).to_json())
    assert data["guidance"] == {"method": "fdg"}
    data["guidance"] = "apg"
    with pytest.raises(ValidationError):
        Recipe.from_dict(data)
