"""The engine on the embedded toy-world model shipped in the package."""

from __future__ import annotations

import numpy as np
import pytest
from engine_fixtures import fast_cpu  # noqa: F401

from studio.engine.generate import Engine
from studio.engine.request import GenerationRequest

SEEDS = (11, 12, 13, 14)


def _red_fraction(image) -> float:  # noqa: ANN001
    pixels = np.asarray(image.convert("RGB")).astype(int)
    red = (pixels[..., 0] > 140) & (pixels[..., 1] < 110) & (pixels[..., 2] < 110)
    return float(red.mean())


@pytest.fixture(scope="module")
def engine(fast_cpu: None) -> Engine:  # noqa: F811
    return Engine("embedded:toyworld", device="cpu")


def _fractions(engine: Engine, colour: str) -> list[float]:
    """With the model's recommended guidance, as the studio generates (plain CFG 5 darkens its reds)."""
    prompt = f"a {colour} circle on a white background, center"
    guidance = engine.model_info().recommended_guidance
    results = []
    for seed in SEEDS:
        request = GenerationRequest(
            prompt=prompt, seed=seed, guidance_scale=5.0, num_inference_steps=20, guidance=guidance
        )
        results.append(_red_fraction(engine.generate(request)[0].image))
    return results


def test_embedded_model_follows_a_red_prompt(engine: Engine) -> None:
    info = engine.model_info()
    assert info.family == "sd1" and (info.default_width, info.default_height) == (64, 64)
    red = _fractions(engine, "red")
    blue = _fractions(engine, "blue")
    assert np.mean(red) > 0.02, red
    assert np.mean(red) > 3 * np.mean(blue), (red, blue)


def test_embedded_controlnet(engine: Engine) -> None:
    from PIL import Image, ImageDraw

    from studio.engine.control import make_control_map

    layout = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(layout).rectangle((8, 8, 30, 30), fill="black")
    control = make_control_map(layout, "canny", 64, 64)
    request = GenerationRequest(
        prompt="a red square on a white background",
        seed=3,
        num_inference_steps=10,
        controls=[("embedded:toyworld", control, 1.0, 0.0, 1.0)],
    )
    result = engine.generate(request)[0]
    assert result.image.size == (64, 64)
    assert result.recipe.controls[0].controlnet == "embedded:toyworld"
