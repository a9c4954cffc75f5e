"""One request, one vocabulary (issue 17, item 5): from the planner down, a request speaks diffusers' names
(``guidance_scale``, ``num_inference_steps``); the recipe JSON keeps its keys (``steps``), mapped to and from
the request in one place, :mod:`studio.engine.request`."""

from __future__ import annotations

import json
import typing
from dataclasses import fields, replace

from studio.engine.guidance_settings import Guidance
from studio.engine.recipe import Recipe
from studio.engine.request import GenerationRequest, LoraSpec, recipe_settings, request_from_recipe
from studio.services.generation_plan import Plan

#: a recipe as images made before this change store it (JSON keys as written into their PNGs)
STORED_RECIPE = {
    "base_model": "embedded:toyworld",
    "prompt": "emberstyle, a red circle",
    "prompt_typed": "a red circle",
    "negative_prompt": "blurry",
    "sampler": "Euler a",
    "steps": 25,
    "guidance_scale": 6.0,
    "seed": 42,
    "width": 64,
    "height": 64,
    "loras": [{"name": "ember-style", "sha256": "ab" * 32, "weight": 0.8, "version_id": "3"}],
    "controls": [],
    "versions": {},
    "recipe_version": 1,
    "guidance": {"method": "cfg", "rescale": 0.7},
}


def test_the_plan_holds_the_engine_request_and_no_numbers_in_other_words() -> None:
    plan_fields = {f.name for f in fields(Plan)}
    doubles = {"cfg", "steps", "guidance_scale", "num_inference_steps", "final_prompt", "sampler"}
    assert not plan_fields & doubles
    assert typing.get_type_hints(Plan)["request"] is GenerationRequest
    assert not {f.name for f in fields(GenerationRequest)} & {"cfg", "steps"}


def test_a_stored_recipe_becomes_a_request_in_diffusers_names() -> None:
    request = request_from_recipe(Recipe.from_dict(STORED_RECIPE), {"ab" * 32: "/loras/ember.safetensors"})
    assert (request.guidance_scale, request.num_inference_steps) == (6.0, 25)
    assert (request.seed, request.sampler, request.width, request.height) == (42, "Euler a", 64, 64)
    assert request.prompt_typed == "a red circle" and request.batch_size == 1
    assert request.loras == (LoraSpec("ember-style", "/loras/ember.safetensors", "ab" * 32, 0.8, "3"),)
    assert request.guidance == Guidance(method="cfg", rescale=0.7)


def test_request_to_recipe_and_back_keeps_every_setting_and_the_recipe_keys() -> None:
    request = GenerationRequest(
        prompt="emberstyle, a red circle",
        negative_prompt="blurry",
        guidance_scale=6.0,
        num_inference_steps=25,
        seed=42,
        sampler="Euler a",
        width=64,
        height=64,
        prompt_typed="a red circle",
        model="embedded:toyworld",
        guidance=Guidance(method="cfg", rescale=0.7),
    )
    settings = recipe_settings(request)
    assert settings["steps"] == 25 and "num_inference_steps" not in settings
    recipe = Recipe(base_model="embedded:toyworld", **settings)
    stored = json.loads(recipe.to_json())
    assert {key: stored[key] for key in ("steps", "guidance_scale", "sampler", "seed")} == {
        "steps": 25,
        "guidance_scale": 6.0,
        "sampler": "Euler a",
        "seed": 42,
    }
    assert "num_inference_steps" not in stored and "cfg" not in stored
    assert "kernels" not in stored  # plain kernels: the JSON of recipes stays as it was before batching
    assert request_from_recipe(Recipe.from_dict(stored)) == replace(request, batch_size=1, kernels="plain")
