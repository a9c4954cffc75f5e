"""Each family path offline: tiny SD1, SDXL, SD3 and FLUX pipelines built from config, saved as safetensors
folders, loaded through studio.engine.models (AutoPipelineForText2Image) and run for one tiny image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from engine_fixtures import (
    fast_cpu,  # noqa: F401
    flux_pipeline,
    save_pipeline,
    sd1_pipeline,
    sd3_pipeline,
    sdxl_pipeline,
    tiny_family_controlnet,
)
from PIL import Image

from studio.engine.generate import Engine
from studio.engine.models import resolve_model
from studio.engine.request import ControlSpec, GenerationRequest

FAMILIES = {
    "sd1": (sd1_pipeline, "StableDiffusionPipeline", 4),
    "sdxl": (sdxl_pipeline, "StableDiffusionXLPipeline", 4),
    "sd3": (sd3_pipeline, "StableDiffusion3Pipeline", 2),
    "flux": (flux_pipeline, "FluxPipeline", 4),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_family_loads_and_generates(family: str, tmp_path: Path, fast_cpu: None) -> None:  # noqa: F811
    build, class_name, multiple = FAMILIES[family]
    folder = save_pipeline(build(), tmp_path / family)
    assert resolve_model(str(folder)).family == family
    engine = Engine(str(folder), device="cpu")
    info = engine.model_info()
    assert (info.family, info.size_multiple) == (family, multiple)
    assert info.supports_negative_prompt is (family != "flux")
    request = GenerationRequest(prompt="a red circle", seed=1, num_inference_steps=2, width=32, height=24)
    first = engine.generate(request)[0]
    assert type(engine.load().pipe).__name__ == class_name
    assert first.image.size == (32, 24)
    assert first.recipe.family == family
    again = engine.generate(request)[0]
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))


@pytest.mark.parametrize("family", ["sdxl", "sd3", "flux"])
def test_family_controlnet_via_from_pipe(family: str, tmp_path: Path, fast_cpu: None) -> None:  # noqa: F811
    build, _, _ = FAMILIES[family]
    engine = Engine(str(save_pipeline(build(), tmp_path / family)), device="cpu")
    controlnet = tmp_path / "controlnet"
    tiny_family_controlnet(family).save_pretrained(controlnet, safe_serialization=True)
    units = (
        ControlSpec(str(controlnet), Image.new("RGB", (40, 40), "white"), 1.0, 0.0, 1.0),
        ControlSpec(str(controlnet), Image.new("RGB", (32, 32), "black"), 0.5, 0.0, 0.5),
    )
    request = GenerationRequest(
        prompt="a red circle", seed=1, num_inference_steps=1, width=32, height=32, controls=units
    )
    result = engine.generate(request)[0]
    assert result.image.size == (32, 32)
    assert len(result.recipe.controls) == 2
    pipe = engine.pipelines.control_pipeline(engine.load(), [str(controlnet)] * 2)
    assert "ControlNet" in type(pipe).__name__
    shared = "unet" if family == "sdxl" else "transformer"
    assert pipe.components[shared] is engine.load().pipe.components[shared]
