"""One request builder for the Generate form and the API (issue 17 item 1): studio.ui.generate_api's
request_from_fields; left-out fields stay None (the brand's default), a value of the wrong kind names its
field."""

from __future__ import annotations

import pytest

from studio.errors import ValidationError
from studio.ui.generate_api import request_from_fields
from studio.ui.generate_form import read_form


def test_the_form_and_the_api_build_the_same_request() -> None:
    form = {
        "brand": "acme", "prompt": "a cat", "negative_prompt": "", "cfg": None, "steps": 3.0, "sampler": None,
        "size": "wide", "batch_size": 1, "seed": "7", "lora_names": ["shine", "glow"], "templates": ["frame"],
        "lora_0": 0.0, "lora_1": 0.5, "lora_2": 1.0, "lora_3": 1.0,
    }  # fmt: skip
    api = request_from_fields(
        {"brand": "acme", "prompt": "a cat", "negative_prompt": "", "steps": 3, "size": "wide", "seed": 7,
         "loras": {"shine": 0.0, "glow": 0.5}, "templates": ["frame"], "batch_size": 1}
    )  # fmt: skip
    assert read_form(form) == api
    assert api.cfg is None and api.sampler is None  # left out: the brand's default


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"loras": ["shine"]}, "loras"),
        ({"loras": {1: 0.5}}, "loras"),
        ({"templates": "frame"}, "templates"),
        ({"prompt": 5}, "prompt"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_value_of_the_wrong_kind_names_its_field(values: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        request_from_fields({"brand": "acme", "prompt": "a cat", **values})
    assert raised.value.field == field
