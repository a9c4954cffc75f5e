"""Several requests in one pipeline call: how a generation worker batches queued requests (issue 20).

:func:`batch_key` says which requests are compatible: the same model and revision, LoRA set and weights,
size, steps, sampler, CFG scale and guidance settings, ControlNet units (their maps' pixels too), whether
there is a negative prompt (FLUX runs true CFG only with one), and the kernels. Prompts, negative prompts,
seeds and the number of images per request may differ. :func:`generate_batch` flattens the requests' images
into one call, one seeded generator per image; with the batch-invariant kernels
(:mod:`~studio.engine.batch_invariant`, which a request's ``kernels`` names and its recipe records) every
image is bit for bit the one its request makes alone, so a recipe still makes its image again. A worker
batches only requests on those kernels.

:class:`BatchSizer` says how many images go into one call: the setting (``STUDIO_GENERATION_BATCH_MAX``),
and on a GPU what its free memory holds, judged by the peak memory one image of that model and size took in
an earlier call (one image at a time until that is measured).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from studio.engine.control import image_sha256

if TYPE_CHECKING:  # pragma: no cover
    from studio.engine.generate import Engine, GeneratedImage, GenerationCancelled, Prepared, ProgressCallback

#: the share of a GPU's free memory a batch may plan to use
MEMORY_SHARE = 0.8


@dataclass(frozen=True)
class BatchItem:
    """One request of a batch, with its own progress report and cancel flag."""

    prepared: Prepared
    progress: ProgressCallback | None = None
    cancel: threading.Event | None = None

    @property
    def images(self) -> int:
        return int(self.prepared.request.batch_size)


def batch_key(prepared: Prepared) -> str:
    """What must be equal for two prepared requests to share a pipeline call (JSON text)."""
    req = prepared.request
    key = {
        "model": [req.model, req.model_revision],
        "loras": [[s.name, str(s.path), s.sha256, float(s.weight)] for s in req.loras],
        "size": [prepared.width, prepared.height],
        "steps": int(req.num_inference_steps),
        "sampler": prepared.sampler,
        "cfg": float(req.guidance_scale),
        "guidance": None if req.guidance is None or req.guidance.is_plain else req.guidance.to_dict(),
        "controls": [
            [u.controlnet, image_sha256(m), float(u.scale), float(u.start), float(u.end)]
            for u, m in zip(req.controls, prepared.control_maps, strict=True)
        ],
        "negative": bool(req.negative_prompt),
        "kernels": req.kernels,
    }
    return json.dumps(key, sort_keys=True)


def generate_batch(
    engine: Engine, items: Sequence[BatchItem], sizer: BatchSizer | None = None
) -> list[list[GeneratedImage] | GenerationCancelled]:
    """Run compatible requests (:func:`batch_key`) as one pipeline call; for each, its images with their
    recipes, or a :class:`GenerationCancelled` (no images) when it was cancelled before the call ended.
    Progress is reported per request; the call is interrupted within one step when every request is
    cancelled. Out of memory is a ModelError for all (the caller may run them one by one)."""
    from studio.engine.generate import GenerationCancelled

    if not items:
        return []
    keys = {batch_key(item.prepared) for item in items}
    if len(keys) != 1:
        raise ValueError("the requests of a batch must be compatible (batch_key)")
    outcomes: list[Any] = [None] * len(items)
    live = [i for i, item in enumerate(items) if not _cancelled(item)]
    for i in set(range(len(items))) - set(live):
        outcomes[i] = GenerationCancelled("generation cancelled before it started")
    if not live:
        return outcomes
    first = items[live[0]].prepared
    steps = int(first.request.num_inference_steps)
    with engine.pipeline(first) as (pipe, loaded, info):
        kwargs = engine.call_kwargs(first, info, 0, None, None)
        prompts, negatives, generators = [], [], []
        for i in live:
            prepared = items[i].prepared
            for index in range(items[i].images):
                prompts.append(prepared.request.prompt)
                negatives.append(prepared.request.negative_prompt or "")
                generators.append(torch.Generator("cpu").manual_seed(prepared.seed + index))
        kwargs.update(
            prompt=prompts, generator=generators, callback_on_step_end=_reporter(items, live, steps)
        )
        if "negative_prompt" in kwargs:
            kwargs["negative_prompt"] = negatives if any(negatives) else None
        what = f"{len(prompts)} image(s) of {len(live)} request(s)"
        with (sizer or BatchSizer(1)).measure(engine, first, len(prompts)):
            images = engine.call_images(pipe, first, kwargs, None, what)
        start = 0
        for i in live:
            mine, start = images[start : start + items[i].images], start + items[i].images
            if _cancelled(items[i]):
                outcomes[i] = GenerationCancelled("generation cancelled (in a batch)", (), items[i].images)
            else:
                outcomes[i] = engine.results(items[i].prepared, loaded, mine)
    return outcomes


def _cancelled(item: BatchItem) -> bool:
    return item.cancel is not None and item.cancel.is_set()


def _reporter(items: Sequence[BatchItem], live: list[int], steps: int) -> Any:
    """A ``callback_on_step_end`` that reports each request's progress (all its images move together) and
    interrupts the call when every request of the batch is cancelled."""

    def on_step_end(
        pipeline: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        done = min(step + 1, steps)
        for i in live:
            item = items[i]
            if item.progress is not None and not _cancelled(item):
                item.progress(done * item.images, steps * item.images)
        if all(_cancelled(items[i]) for i in live):
            pipeline._interrupt = True
        return callback_kwargs

    return on_step_end


class BatchSizer:
    """How many images one call may hold: ``limit``, and on a GPU what its free memory holds (from the peak
    memory per image measured in earlier calls of the same model and size; one image until then)."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, int(limit))
        self._per_image: dict[tuple[str, int, int], float] = {}

    def capacity(self, engine: Engine, prepared: Prepared) -> int:
        if self.limit == 1 or not engine.device.device.startswith("cuda"):
            return self.limit
        per_image = self._per_image.get(_size_key(prepared))
        if per_image is None:
            return 1
        free, _total = torch.cuda.mem_get_info()
        return max(1, min(self.limit, int(free * MEMORY_SHARE // max(per_image, 1.0))))

    @contextmanager
    def measure(self, engine: Engine, prepared: Prepared, images: int) -> Iterator[None]:
        """Record the peak memory per image of the call within (on a GPU)."""
        if not engine.device.device.startswith("cuda"):
            yield
            return
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        yield
        per_image = (torch.cuda.max_memory_allocated() - before) / max(1, images)
        key = _size_key(prepared)
        self._per_image[key] = max(per_image, self._per_image.get(key, 0.0))


def _size_key(prepared: Prepared) -> tuple[str, int, int]:
    return (str(prepared.request.model), prepared.width, prepared.height)
