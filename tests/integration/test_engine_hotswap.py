"""Compile mode: LoRA slots hot-swapped into a compiled denoiser, so brand switches never recompile."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from engine_fixtures import fast_cpu, lora_files, sd1_dir  # noqa: F401
from helpers import DEMO_BRANDS

from studio.engine.adapters import AdapterSpec, HotswapAdapters
from studio.engine.generate import Engine
from studio.engine.request import GenerationRequest
from studio.errors import ModelError, ValidationError

FAST = {"prompt": "a red circle", "seed": 5, "num_inference_steps": 1, "width": 32, "height": 32}


def _sha(result: list) -> str:
    return hashlib.sha256(result[0].image.tobytes()).hexdigest()


def _pipe(folder: Path):  # noqa: ANN202
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(folder))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _run(pipe) -> str:  # noqa: ANN001
    generator = torch.Generator().manual_seed(5)
    image = pipe("a red circle", num_inference_steps=1, width=32, height=32, generator=generator).images[0]
    return hashlib.sha256(image.tobytes()).hexdigest()


def test_slots_give_the_same_pixels_as_plain_adapters(
    sd1_dir: Path,  # noqa: F811
    lora_files: dict[str, Path],  # noqa: F811
) -> None:
    plain = _pipe(sd1_dir)
    base = _run(plain)
    plain.load_lora_weights(str(lora_files["a"]), adapter_name="a")
    plain.load_lora_weights(str(lora_files["c"]), adapter_name="c")
    plain.set_adapters(["a"], [1.0])
    with_a = _run(plain)
    plain.set_adapters(["a", "c"], [1.0, 0.5])
    with_ac = _run(plain)

    pipe = _pipe(sd1_dir)
    slots = HotswapAdapters(pipe, slots=2, target_rank=8)
    assert _run(pipe) == base  # zero-filled slots change nothing
    slots.activate([AdapterSpec("a", lora_files["a"], None, 1.0)])
    assert _run(pipe) == with_a
    slots.activate(
        [AdapterSpec("a", lora_files["a"], None, 1.0), AdapterSpec("c", lora_files["c"], None, 0.5)]
    )
    assert _run(pipe) == with_ac
    slots.activate([])
    assert _run(pipe) == base
    assert slots.resident == ["a", "c"]  # kept in memory for the next switch


def test_slots_hold_the_embedded_models_demo_lora() -> None:
    """The demo LoRAs train the ResNet time projections too (the embedded model's pooled-caption path):
    the slots cover those layers, and the swapped-in LoRA draws what plain adapters draw."""
    from safetensors import safe_open

    from studio.engine.models import resolve_model

    ember = DEMO_BRANDS / "ember" / "loras" / "ember-style.safetensors"
    with safe_open(str(ember), "pt") as f:
        keys = list(f.keys())
    assert any("time_emb_proj" in key for key in keys)
    model = resolve_model("embedded:toyworld").path
    plain = _pipe(model)
    base = _run(plain)
    plain.load_lora_weights(str(ember), adapter_name="ember")
    with_ember = _run(plain)
    assert with_ember != base

    pipe = _pipe(model)
    slots = HotswapAdapters(pipe, slots=1, target_rank=4)
    slots.activate([AdapterSpec("ember", ember, None, 1.0)])
    assert _run(pipe) == with_ember


def test_slots_refuse_what_they_cannot_hold(sd1_dir: Path, lora_files: dict[str, Path]) -> None:  # noqa: F811
    slots = HotswapAdapters(_pipe(sd1_dir), slots=2, target_rank=4)
    with pytest.raises(ValidationError, match="at most 2 LoRAs"):
        slots.activate([AdapterSpec(n, lora_files[n], None, 1.0) for n in ("a", "b", "c")])
    with pytest.raises(ModelError, match="mismatch.safetensors: LoRA does not fit"):
        slots.activate([AdapterSpec("m", lora_files["mismatch"], None, 1.0)])
    with pytest.raises(ModelError, match="c.safetensors: LoRA rank 8 is above the hotswap rank 4"):
        slots.activate([AdapterSpec("c", lora_files["c"], None, 1.0)])


@pytest.mark.slow
def test_compiled_brand_switches_never_recompile(
    sd1_dir: Path,  # noqa: F811
    lora_files: dict[str, Path],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch._dynamo

    plain = Engine(str(sd1_dir), device="cpu")
    compiled = Engine(str(sd1_dir), device="cpu", compile=True, compile_backend="eager", hotswap_rank=8)
    assert _sha(compiled.generate(GenerationRequest(**FAST))) == _sha(
        plain.generate(GenerationRequest(**FAST))
    )
    assert compiled.load().compiled
    monkeypatch.setattr(torch._dynamo.config, "error_on_recompile", True)
    switches = [
        [("a", lora_files["a"], None, 1.0)],
        [("b", lora_files["b"], None, 1.0)],
        [("c", lora_files["c"], None, 0.5)],  # rank 8 after rank 4
        [("a", lora_files["a"], None, 1.0), ("c", lora_files["c"], None, 1.2)],
        [],
        [("a", lora_files["a"], None, 0.3)],
    ]
    for loras in switches:
        got = _sha(compiled.generate(GenerationRequest(**FAST, loras=loras)))
        assert got == _sha(plain.generate(GenerationRequest(**FAST, loras=loras))), loras
