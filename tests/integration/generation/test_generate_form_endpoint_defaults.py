"""The Generate form's own endpoint ``/generate`` (issue 17): arguments left out take the brand's defaults,
as ``/generate_api`` and the CLI do; it used to take the form's initial 7.0 and 20 steps for cfg and steps.
Through ``gradio_client`` against a real local server (the brand ``acme``: cfg 5, 3 steps, Euler, 'square').
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.engine.recipe import read_recipe
from studio.services.views import Actor

PASSWORD = "correct horse"


def test_cfg_and_steps_left_out_of_the_form_endpoint_are_the_brands(studio: Any, server: str) -> None:
    from gradio_client import Client

    client = Client(server, auth=("mia", PASSWORD), verbose=False)
    _, _, details = client.predict(brand="acme", prompt="a red circle", seed="4", api_name="/generate")
    image_id = details["generations"][0]["images"][0]["id"]
    recipe = read_recipe(Path(studio.generation.get_image(Actor.user("mia"), image_id).path))
    assert (recipe.guidance_scale, recipe.steps, recipe.sampler) == (5.0, 3, "Euler")
    assert (recipe.width, recipe.height, recipe.seed) == (32, 32, 4)
    assert {e.name: e.weight for e in recipe.loras} == {"shine": 0.8}  # the LoRA at its default weight
