"""The Generate tab's Guidance control (issue 18): its choices, the brand's default in its hint, a remix's
guidance shown back, a bad choice named under the field, and a run through the live form endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from studio.engine.recipe import read_recipe
from studio.errors import ValidationError
from studio.services.generation import GenerateInput
from studio.services.views import Actor
from studio.ui.generate_form import (
    FORM_FIELDS,
    GUIDANCE_PRESETS,
    field_messages,
    form_updates,
    guidance_label,
    read_form,
)

PASSWORD = "correct horse"
FDG = "Colour-stable (FDG)"


def _form(**values: Any) -> dict[str, Any]:
    return {**dict.fromkeys(FORM_FIELDS), "brand": "acme", "prompt": "a red circle", **values}


def test_each_choice_becomes_the_requests_guidance() -> None:
    assert read_form(_form()).guidance is None  # blank: the brand's default
    for label, preset in GUIDANCE_PRESETS.items():
        assert read_form(_form(guidance=label)).guidance == preset
        assert guidance_label(preset) == label
    with pytest.raises(ValidationError) as err:
        read_form(_form(guidance="Magic"))
    assert err.value.field == "guidance"
    assert guidance_label({"method": "fdg", "fdg_low_scale": 7.0}) == "Brand default"  # no preset: default


def test_a_bad_setting_shows_under_the_guidance_field() -> None:
    problem = ValidationError("guidance.apg_eta", "9 is outside 0-1")
    assert set(field_messages([problem], [])) == {"guidance"}


def test_the_hint_names_the_brands_default_and_a_remix_keeps_its_choice(studio: Any) -> None:
    options = studio.generation.options(Actor.user("mia"), "acme")
    last = form_updates(options, None)[-1]
    assert last["value"] == "Brand default" and "This brand's default: Plain CFG" in last["info"]
    remix = GenerateInput(brand="acme", prompt="x", guidance=GUIDANCE_PRESETS[FDG])
    assert form_updates(options, remix)[-1]["value"] == FDG


def test_the_form_endpoint_generates_with_the_chosen_guidance(studio: Any, server: str) -> None:
    from gradio_client import Client

    client = Client(server, auth=("mia", PASSWORD), verbose=False)
    args = ("acme", "a red circle", "", 5, 2, "Euler", "square", 1, "11", [], 1.0, 1.0, 1.0, 1.0, FDG)
    gallery, _, _ = client.predict(*args, api_name="/generate")
    image = gallery[0]["image"]
    path = Path(image if isinstance(image, str) else image["path"])
    recorded = read_recipe(path).guidance
    assert {k: recorded[k] for k in GUIDANCE_PRESETS[FDG]} == GUIDANCE_PRESETS[FDG]
