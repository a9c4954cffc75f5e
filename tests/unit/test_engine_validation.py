"""Request validation: every bad input is a clear ValidationError naming the field (no weights needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from studio.engine.generate import Engine
from studio.engine.request import ControlSpec, GenerationRequest, LoraSpec
from studio.errors import ValidationError


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """An engine over a config-only SD folder: ×2 VAE, 2-level UNet → sizes are multiples of 4."""
    folder = tmp_path_factory.mktemp("configs")
    index = {"_class_name": "StableDiffusionPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}
    configs = {
        "model_index.json": index,
        "vae/config.json": {"block_out_channels": [16, 32]},
        "unet/config.json": {
            "down_block_types": ["DownBlock2D", "CrossAttnDownBlock2D"],
            "sample_size": 16,
            "cross_attention_dim": 32,
        },
        "scheduler/scheduler_config.json": {
            "_class_name": "EulerDiscreteScheduler",
            "prediction_type": "v_prediction",
            "timestep_spacing": "trailing",
        },
    }
    for name, data in configs.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(data))
    return Engine(str(folder), device="cpu")


def test_defaults_are_filled(engine: Engine) -> None:
    info = engine.model_info()
    assert (info.family, info.size_multiple, info.default_width) == ("sd1", 4, 32)
    request = engine.validate(GenerationRequest(prompt="a red circle"))
    assert (request.width, request.height, request.sampler) == (32, 32, "Euler")
    assert request.seed is not None and 0 <= request.seed < 2**32
    assert request.prompt_typed == "a red circle"


BAD = [
    ({"prompt": "   "}, "prompt", "must not be empty"),
    ({"prompt": "x" * 2001}, "prompt", "longer than 2000"),
    ({"guidance_scale": 0.5}, "guidance_scale", "outside 1-30"),
    ({"guidance_scale": 31}, "guidance_scale", "outside 1-30"),
    ({"guidance_scale": float("nan")}, "guidance_scale", "finite"),
    ({"num_inference_steps": 0}, "num_inference_steps", "outside 1-150"),
    ({"num_inference_steps": 151}, "num_inference_steps", "outside 1-150"),
    ({"num_inference_steps": 2.5}, "num_inference_steps", "whole number"),
    ({"width": 30}, "width", "multiple of 4"),
    ({"height": 0}, "height", "multiple of 4"),
    ({"height": 8192}, "height", "between 4 and 4096"),
    ({"batch_size": 0}, "batch_size", "outside 1-8"),
    ({"batch_size": 9}, "batch_size", "outside 1-8"),
    ({"seed": -1}, "seed", "outside 0-"),
    ({"sampler": "Warp 9"}, "sampler", "valid names: Euler, Euler a, DPM++ 2M"),
    ({"sampler": "LCM"}, "sampler", "LCM needs a latent-consistency"),
    ({"loras": [("acme", "x.safetensors", None, 1.6)]}, "loras[0].weight", "outside 0.0-1.5"),
    ({"loras": [("acme", "x.safetensors", None, -0.1)]}, "loras[0].weight", "outside 0.0-1.5"),
    ({"loras": [("bad.name", "x.safetensors", None, 1.0)]}, "loras[0].name", "letters, digits"),
    ({"loras": [("a", "x.safetensors", None, 1), ("a", "y.safetensors", None, 1)]}, "loras[1].name", "twice"),
]


@pytest.mark.parametrize(("changes", "field", "message"), BAD)
def test_bad_input(engine: Engine, changes: dict, field: str, message: str) -> None:
    request = GenerationRequest(**({"prompt": "a red circle"} | changes))
    with pytest.raises(ValidationError) as info:
        engine.validate(request)
    assert info.value.field == field
    assert message in str(info.value)


def test_bad_controls(engine: Engine, tmp_path: Path) -> None:
    image = Image.new("RGB", (16, 16))
    cases = [
        (ControlSpec("cn", image, scale=2.5), "controls[0].scale"),
        (ControlSpec("cn", image, start=0.5, end=0.5), "controls[0].start"),
        (ControlSpec("", image), "controls[0].controlnet"),
    ]
    for unit, field in cases:
        with pytest.raises(ValidationError) as info:
            engine.validate(GenerationRequest(prompt="p", controls=(unit,)))
        assert info.value.field == field
    text = tmp_path / "layout.png"
    text.write_text("not an image")
    with pytest.raises(ValidationError, match="layout.png: not a readable image") as info:
        engine.validate(GenerationRequest(prompt="p", controls=(ControlSpec("cn", text),)))
    assert info.value.field == "controls[0].image"
    with pytest.raises(ValidationError, match="at most 4"):
        units = tuple(ControlSpec("cn", image) for _ in range(5))
        engine.validate(GenerationRequest(prompt="p", controls=units))


def test_too_many_loras(engine: Engine) -> None:
    loras = tuple(LoraSpec(f"l{i}", "x.safetensors") for i in range(9))
    with pytest.raises(ValidationError, match="at most 8 LoRAs"):
        engine.validate(GenerationRequest(prompt="p", loras=loras))
