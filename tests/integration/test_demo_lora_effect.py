"""The shipped demo brand LoRA moves images towards its brand's palette, through the generation service.

An effect test on the real embedded model and the committed ``brands/ember`` LoRA: the same prompt and
seeds at LoRA weight 0 and 1 (brand defaults otherwise), scored by the studio's palette check when saved.
Scores are nearly all-or-nothing per image (the background decides), so the mean of a few seeds is compared.
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
SEEDS = (1010, 1011, 1012, 1013)


@pytest.mark.usefixtures("fast_cpu")
def test_ember_style_lora_raises_the_palette_score(services: Any) -> None:
    services.users.add_user(SYSTEM, "ada", ["admin"], "correct horse")
    services.brands.sync(SYSTEM, DEMO_BRANDS)

    def score(weight: float) -> float:
        scores = []
        for seed in SEEDS:
            request = GenerateInput(
                brand="ember",
                prompt="a square, top",
                seed=seed,
                sampler="DPM++ 2M",
                loras={"ember-style": weight},
            )
            image = services.generation.generate(SYSTEM, request).images[0]
            assert image.palette_score is not None
            scores.append(image.palette_score)
        return sum(scores) / len(scores)

    without, with_lora = score(0.0), score(1.0)
    print(f"ember palette score, LoRA weight 0 -> 1: {without:.3f} -> {with_lora:.3f}")
    assert with_lora >= without + MARGIN, (without, with_lora)
