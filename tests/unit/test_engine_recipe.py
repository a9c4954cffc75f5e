"""Recipes: JSON round trip, A1111 ``parameters`` text, PNG chunks."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from studio.engine.recipe import (
    ControlEntry,
    LoraEntry,
    Recipe,
    library_versions,
    png_bytes,
    png_metadata,
    read_parameters,
    read_recipe,
)
from studio.errors import NotFoundError, ValidationError


def _recipe(**overrides: object) -> Recipe:
    values: dict[str, object] = {
        "base_model": "embedded:toyworld",
        "base_model_hash": "ab" * 32,
        "family": "sd1",
        "prompt": "acme style, a red circle — «café»",
        "prompt_typed": "a red circle — «café»",
        "negative_prompt": "blurry, ugly",
        "sampler": "DPM++ 2M Karras",
        "steps": 20,
        "guidance_scale": 5.5,
        "seed": 4242,
        "width": 64,
        "height": 48,
        "loras": (LoraEntry("acme_style", "cd" * 32, 0.8, "v3"),),
        "controls": (ControlEntry("embedded:toyworld", "ef" * 32, 0.9, 0.0, 0.6, "tpl-1"),),
        "versions": library_versions(),
    }
    values.update(overrides)
    return Recipe(**values)  # type: ignore[arg-type]


def test_json_round_trip_is_exact() -> None:
    recipe = _recipe()
    again = Recipe.from_json(recipe.to_json())
    assert again == recipe
    assert again.to_json() == recipe.to_json()
    assert {"torch", "diffusers", "studio"} <= set(recipe.versions)


def test_from_json_refuses_unknown_fields_and_bad_json() -> None:
    data = _recipe().to_dict() | {"surprise": 1}
    with pytest.raises(ValidationError, match="surprise"):
        Recipe.from_dict(data)
    with pytest.raises(ValidationError, match="JSON"):
        Recipe.from_json("{not json")


def test_parameters_text_is_a1111_style() -> None:
    """The full line is held by tests/unit/test_a1111_parameters.py; here the shape of it."""
    lines = _recipe().parameters_text().split("\n")
    assert lines[0] == "acme style, a red circle — «café» <lora:acme_style:0.8>"
    assert lines[1] == "Negative prompt: blurry, ugly"
    assert lines[2].startswith(
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5.5, Seed: 4242, Size: 64x48, "
    )
    assert 'Model: "embedded:toyworld", RNG: CPU' in lines[2]
    assert "Lora hashes" not in lines[2]  # no A1111 hash recorded for this LoRA
    control = (
        'ControlNet 0: "Module: none, Model: embedded-toyworld, Weight: 0.9, Resize Mode: Crop and Resize, '
        "Processor Res: -1, Threshold A: -1, Threshold B: -1, Guidance Start: 0.0, Guidance End: 0.6, "
        'Pixel Perfect: False, Control Mode: Balanced"'
    )
    assert control in lines[2]


def test_png_round_trip(tmp_path: Path) -> None:
    recipe = _recipe()
    path = tmp_path / "image.png"
    Image.new("RGB", (8, 8), "red").save(path, pnginfo=png_metadata(recipe))
    assert read_recipe(path) == recipe
    assert read_parameters(path) == recipe.parameters_text()


def test_png_without_recipe(tmp_path: Path) -> None:
    path = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    with pytest.raises(NotFoundError, match="plain.png"):
        read_recipe(path)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png")
    with pytest.raises(ValidationError, match="junk.png"):
        read_recipe(junk)


def test_png_bytes(tmp_path: Path) -> None:
    recipe = _recipe()
    path = tmp_path / "bytes.png"
    path.write_bytes(png_bytes(Image.new("RGB", (8, 8), "blue"), recipe))
    assert read_recipe(path) == recipe


def test_importing_the_engine_package_is_cheap() -> None:
    import subprocess
    import sys

    code = "import sys, studio.engine, studio.engine.recipe; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
