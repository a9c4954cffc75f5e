"""Pure helpers of the gallery: recipe flattening for comparison and the remix JSON round trip."""

from __future__ import annotations

import pytest

from studio.errors import ValidationError
from studio.services.gallery import flatten, generate_input_from_json, remix_json
from studio.services.generation import GenerateInput


def test_flatten_names_nested_fields() -> None:
    recipe = {
        "seed": 3,
        "loras": [{"name": "shine", "weight": 0.8}],
        "controls": [],
        "versions": {"torch": "2"},
    }
    assert flatten(recipe) == {
        "controls": "[]",
        "loras[0].name": "shine",
        "loras[0].weight": "0.8",
        "seed": "3",
        "versions.torch": "2",
    }


def test_remix_json_round_trip_and_refusals() -> None:
    request = GenerateInput(brand="acme", prompt="a cat", seed=7, loras={"shine": 0.5}, templates=("frame",))
    assert generate_input_from_json(remix_json(request)) == request
    with pytest.raises(ValidationError, match="unknown fields: colour"):
        generate_input_from_json('{"brand": "acme", "prompt": "x", "colour": 1}')
    with pytest.raises(ValidationError, match="not valid JSON"):
        generate_input_from_json("{nope")
