"""ControlNet pipelines from from_pipe share the base components; several units make a MultiControlNet."""

from __future__ import annotations

from pathlib import Path

import pytest
from engine_fixtures import controlnet_dir, fast_cpu, lora_files, sd1_dir  # noqa: F401
from PIL import Image, ImageDraw

from studio.engine.control import fit_to_size, image_sha256, make_control_map
from studio.engine.generate import Engine
from studio.engine.request import ControlSpec, GenerationRequest
from studio.errors import ModelError


@pytest.fixture(scope="module")
def engine(sd1_dir: Path) -> Engine:  # noqa: F811
    return Engine(str(sd1_dir), device="cpu")


def _layout() -> Image.Image:
    image = Image.new("RGB", (100, 60), "white")
    ImageDraw.Draw(image).ellipse((10, 10, 50, 50), fill="red")
    return image


def test_from_pipe_shares_components(engine: Engine, controlnet_dir: Path) -> None:  # noqa: F811
    loaded = engine.load()
    pipe = engine.pipelines.control_pipeline(loaded, [str(controlnet_dir)])
    assert type(pipe).__name__ == "StableDiffusionControlNetPipeline"
    for name, component in loaded.pipe.components.items():
        if name != "scheduler" and component is not None:
            assert pipe.components[name] is component, name
    assert engine.pipelines.control_pipeline(loaded, [str(controlnet_dir)]) is pipe  # cached


def test_generate_with_two_templates(
    engine: Engine,
    controlnet_dir: Path,  # noqa: F811
    lora_files: dict[str, Path],  # noqa: F811
) -> None:
    edges = make_control_map(_layout(), "canny", 48, 48)  # another size: fitted to the output
    lines = make_control_map(_layout(), "lineart_standard", 32, 32)
    controls = (
        ControlSpec(str(controlnet_dir), edges, 1.0, 0.0, 1.0, template_id="t-edges"),
        ControlSpec(str(controlnet_dir), lines, 0.5, 0.2, 0.8, image_sha256="ab" * 32),
    )
    request = GenerationRequest(
        prompt="a red circle",
        seed=2,
        num_inference_steps=1,
        width=32,
        height=32,
        controls=controls,
        loras=[("brand_a", lora_files["a"], None, 1.0)],
    )
    result = engine.generate(request)[0]
    assert result.image.size == (32, 32)
    pipe = engine.pipelines.control_pipeline(engine.load(), [str(controlnet_dir)] * 2)
    assert type(pipe.controlnet).__name__ == "MultiControlNetModel"
    first, second = result.recipe.controls
    assert first.template_id == "t-edges"
    assert first.control_image_sha256 == image_sha256(fit_to_size(edges, 32, 32))
    assert (second.scale, second.start, second.end, second.control_image_sha256) == (0.5, 0.2, 0.8, "ab" * 32)
    assert engine.generate(request)[0].image.tobytes() == result.image.tobytes()


def test_controlnet_of_another_shape_is_refused(engine: Engine, tmp_path: Path) -> None:
    from engine_fixtures import tiny_controlnet, tiny_unet

    folder = tmp_path / "cn48"
    tiny_controlnet(tiny_unet(cross_attention_dim=48)).save_pretrained(folder, safe_serialization=True)
    with pytest.raises(ModelError, match="cn48: ControlNet does not fit"):
        engine.generate(
            GenerationRequest(
                prompt="p", num_inference_steps=1, width=32, height=32, controls=[(str(folder), _layout())]
            )
        )
