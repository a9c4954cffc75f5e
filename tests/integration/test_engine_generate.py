"""Engine.generate on a tiny SD1 pipeline saved as a safetensors folder: determinism, recipes, samplers,
progress, cancellation, out-of-memory recovery."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from engine_fixtures import fast_cpu, sd1_dir  # noqa: F401

from studio.engine import png_metadata, read_recipe
from studio.engine.generate import Engine, GenerationCancelled
from studio.engine.request import GenerationRequest, request_from_recipe
from studio.errors import ModelError

FAST = {"num_inference_steps": 3, "width": 32, "height": 32}


def _sha(image) -> str:  # noqa: ANN001
    return hashlib.sha256(image.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def engine(sd1_dir: Path) -> Engine:  # noqa: F811
    return Engine(str(sd1_dir), device="cpu")


def test_family_and_loading_through_models(engine: Engine) -> None:
    loaded = engine.load()
    assert loaded.model.family == "sd1"
    assert type(loaded.pipe).__name__ == "StableDiffusionPipeline"
    assert engine.load() is loaded  # one base pipeline per (model, device, dtype)


def test_same_request_same_pixels(engine: Engine) -> None:
    request = GenerationRequest(prompt="a red circle", negative_prompt="blurry", seed=7, **FAST)
    first = engine.generate(request)[0]
    second = engine.generate(request)[0]
    assert _sha(first.image) == _sha(second.image)
    other = engine.generate(GenerationRequest(prompt="a red circle", seed=8, **FAST))[0]
    assert _sha(other.image) != _sha(first.image)


def test_batch_seeds_and_regenerate_from_recipe(engine: Engine, tmp_path: Path) -> None:
    batch = engine.generate(GenerationRequest(prompt="a blue square", seed=100, batch_size=3, **FAST))
    assert [image.seed for image in batch] == [100, 101, 102]
    assert len({_sha(image.image) for image in batch}) == 3
    path = tmp_path / "second.png"
    batch[1].image.save(path, pnginfo=png_metadata(batch[1].recipe))
    recipe = read_recipe(path)
    assert recipe == batch[1].recipe
    again = engine.generate(request_from_recipe(recipe))[0]
    assert _sha(again.image) == _sha(batch[1].image)


def test_recipe_records_everything(engine: Engine) -> None:
    result = engine.generate(
        GenerationRequest(
            prompt="acme style, a red circle",
            prompt_typed="a red circle",
            negative_prompt="ugly",
            guidance_scale=4.5,
            seed=11,
            sampler="euler a",
            **FAST,
        )
    )[0]
    recipe = result.recipe
    assert recipe.prompt == "acme style, a red circle" and recipe.prompt_typed == "a red circle"
    assert (recipe.sampler, recipe.steps, recipe.guidance_scale, recipe.seed) == ("Euler a", 3, 4.5, 11)
    assert (recipe.width, recipe.height, recipe.family) == (32, 32, "sd1")
    assert recipe.base_model_hash and len(recipe.base_model_hash) == 64
    assert {"torch", "diffusers", "studio"} <= set(recipe.versions)
    assert result.image.size == (32, 32)


def test_random_seed_is_recorded(engine: Engine) -> None:
    result = engine.generate(GenerationRequest(prompt="a red circle", seed=None, **FAST))[0]
    again = engine.generate(request_from_recipe(result.recipe))[0]
    assert _sha(again.image) == _sha(result.image)


@pytest.mark.parametrize("sampler", ["Euler", "Euler a", "DPM++ 2M", "DPM++ 2M Karras", "DDIM", "UniPC"])
def test_every_sampler_runs(engine: Engine, sampler: str) -> None:
    result = engine.generate(GenerationRequest(prompt="a red circle", seed=3, sampler=sampler, **FAST))
    pixels = np.asarray(result[0].image)
    assert pixels.shape == (32, 32, 3)
    assert np.isfinite(pixels).all()
    assert engine.load().pipe.scheduler.config.prediction_type == "v_prediction"


def test_progress_counts_steps_over_the_batch(engine: Engine) -> None:
    seen: list[tuple[int, int]] = []
    engine.generate(
        GenerationRequest(prompt="a red circle", seed=1, batch_size=2, **FAST),
        progress=lambda step, total: seen.append((step, total)),
    )
    assert seen == [(1, 6), (2, 6), (3, 6), (4, 6), (5, 6), (6, 6)]


def test_cancel_within_one_step(engine: Engine) -> None:
    cancel = threading.Event()
    seen: list[int] = []

    def progress(step: int, total: int) -> None:
        seen.append(step)
        if step == 2:
            cancel.set()

    request = GenerationRequest(prompt="a red circle", seed=1, num_inference_steps=20, width=32, height=32)
    with pytest.raises(GenerationCancelled):
        engine.generate(request, progress=progress, cancel=cancel)
    assert seen == [1, 2]
    with pytest.raises(GenerationCancelled):
        engine.generate(request, cancel=cancel)  # already set: nothing runs
    first = engine.generate(GenerationRequest(prompt="a red circle", seed=1, **FAST))  # next request works
    assert len(first) == 1


def test_out_of_memory_frees_and_next_request_works(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    pipe_class = type(engine.load().pipe)
    original = pipe_class.__call__
    freed: list[str] = []
    calls = {"n": 0}

    def exploding(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls["n"] += 1
        if calls["n"] == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pipe_class, "__call__", exploding)
    monkeypatch.setattr("studio.engine.generate.free_memory", lambda device: freed.append(device.device))
    with pytest.raises(ModelError, match="out of memory generating 32x32 on cpu; caches were freed"):
        engine.generate(GenerationRequest(prompt="a red circle", seed=1, **FAST))
    assert freed == ["cpu"]
    assert len(engine.generate(GenerationRequest(prompt="a red circle", seed=1, **FAST))) == 1


def test_concurrent_requests_are_serialised(engine: Engine) -> None:
    requests = [GenerationRequest(prompt="a red circle", seed=seed, **FAST) for seed in (21, 22)]
    expected = [_sha(engine.generate(request)[0].image) for request in requests]
    got: dict[int, str] = {}

    def run(index: int) -> None:
        got[index] = _sha(engine.generate(requests[index])[0].image)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert [got[0], got[1]] == expected
