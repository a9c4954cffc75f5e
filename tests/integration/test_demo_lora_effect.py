"""The shipped demo brand LoRA moves images towards its brand's palette, through the generation service.

An effect test on the real embedded model and the committed ``brands/ember`` LoRA: the same prompt and
seed at LoRA weight 0 and 1 (brand defaults otherwise), scored by the studio's palette check when saved.
``benchmarks/demo_lora_shift.py`` measures the same over a grid of prompts, seeds and samplers.
"""

from __future__ import annotations

from typing import Any

import pytest
from engine_fixtures import fast_cpu  # noqa: F401
from helpers import DEMO_BRANDS

from studio.services.generation import GenerateInput
from studio.services.views import SYSTEM

MARGIN = 0.3


@pytest.mark.usefixtures("fast_cpu")
def test_ember_style_lora_raises_the_palette_score(services: Any) -> None:
    services.users.add_user(SYSTEM, "ada", ["admin"], "correct horse")
    services.brands.sync(SYSTEM, DEMO_BRANDS)

    def score(weight: float) -> float:
        request = GenerateInput(
            brand="ember",
            prompt="a square",
            seed=1010,
            sampler="DPM++ 2M",
            loras={"ember-style": weight},
        )
        image = services.generation.generate(SYSTEM, request).images[0]
        assert image.palette_score is not None
        return image.palette_score

    without, with_lora = score(0.0), score(1.0)
    print(f"ember palette score, LoRA weight 0 -> 1: {without:.3f} -> {with_lora:.3f}")
    assert with_lora >= without + MARGIN, (without, with_lora)
