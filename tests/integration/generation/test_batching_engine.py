"""Several requests in one pipeline call on the embedded model (issue 20, item 3): each request's images are
pixel for pixel the ones it makes alone (``Engine.generate``), with its own recipe; incompatible requests are
refused; a request cancelled in the batch gets no images while the others do."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from engine_fixtures import fast_cpu  # noqa: F401

from studio.engine.batching import BatchItem, BatchSizer, batch_key, generate_batch
from studio.engine.generate import Engine, GenerationCancelled
from studio.engine.request import GenerationRequest

STEPS = 6


@pytest.fixture(scope="module")
def engine(fast_cpu: None) -> Engine:  # noqa: F811
    return Engine("embedded:toyworld", device="cpu", batch_invariant=True)


def _request(prompt: str, seed: int, images: int = 1, **extra: object) -> GenerationRequest:
    return GenerationRequest(
        prompt=prompt, seed=seed, batch_size=images, guidance_scale=5.0, num_inference_steps=STEPS, **extra
    )


def test_a_batch_makes_the_same_pixels_as_each_request_alone(engine: Engine) -> None:
    requests = [
        _request("a red circle on a teal background", 11),
        _request("a blue square on a gray background", 12, images=2),
        _request("a yellow triangle on a white background", 13),
        _request("a teal star on a black background", 14, images=3),
    ]
    items = [BatchItem(engine.prepare(r)) for r in requests]
    steps_seen: list[tuple[int, int]] = []
    items[1] = BatchItem(items[1].prepared, progress=lambda step, total: steps_seen.append((step, total)))
    batched = generate_batch(engine, items, BatchSizer(8))
    for request, outcome in zip(requests, batched, strict=True):
        assert isinstance(outcome, list)
        alone = engine.generate(request)
        assert [o.seed for o in outcome] == [a.seed for a in alone]
        for mine, reference in zip(outcome, alone, strict=True):
            assert np.array_equal(np.asarray(mine.image), np.asarray(reference.image)), request.prompt
            assert mine.recipe == reference.recipe and mine.recipe.kernels == "batch-invariant"
    assert steps_seen[-1] == (2 * STEPS, 2 * STEPS) and len(steps_seen) == STEPS


def test_incompatible_requests_are_refused(engine: Engine) -> None:
    a = engine.prepare(_request("a red circle", 1))
    b = engine.prepare(_request("a red circle", 1, width=128))
    assert batch_key(a) != batch_key(b)
    assert batch_key(a) != batch_key(engine.prepare(_request("a red circle", 1, kernels="plain")))
    assert batch_key(a) == batch_key(engine.prepare(_request("a blue star", 9, images=2)))
    with pytest.raises(ValueError, match="compatible"):
        generate_batch(engine, [BatchItem(a), BatchItem(b)])


def test_a_cancelled_request_gets_no_images_and_the_others_do(engine: Engine) -> None:
    stop = threading.Event()
    items = [
        BatchItem(
            engine.prepare(_request("a red circle", 21)), progress=lambda s, t: stop.set() if s >= 2 else None
        ),
        BatchItem(engine.prepare(_request("a blue square", 22)), cancel=stop),
    ]
    first, second = generate_batch(engine, items)
    assert isinstance(first, list) and len(first) == 1
    assert isinstance(second, GenerationCancelled) and second.images == ()
    stop_all = threading.Event()
    stop_all.set()
    outcomes = generate_batch(engine, [BatchItem(item.prepared, cancel=stop_all) for item in items])
    assert all(isinstance(o, GenerationCancelled) for o in outcomes)


def test_the_recipe_names_the_kernels_and_a_request_from_it_uses_them(engine: Engine) -> None:
    from studio.engine.recipe import Recipe
    from studio.engine.request import request_from_recipe

    plain = Engine("embedded:toyworld", device="cpu")  # the default: plain kernels, faster alone
    made = engine.generate(_request("a red circle", 31))[0]
    assert made.recipe.to_dict()["kernels"] == "batch-invariant"
    again = plain.generate(request_from_recipe(Recipe.from_json(made.recipe.to_json())))[0]
    assert np.array_equal(np.asarray(again.image), np.asarray(made.image))
    assert "kernels" not in plain.generate(_request("a red circle", 31))[0].recipe.to_dict()
