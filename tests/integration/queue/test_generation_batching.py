"""Batching in a generation worker (issue 20, item 3): compatible queued requests run as one pipeline call,
each image pixel for pixel the one its recipe makes alone (regenerate, inline); incompatible ones run apart;
requests on the plain kernels are never batched; without batching (``batch_max=1``) every image is a call of
its own. On PostgreSQL too (the companions are claimed ``FOR UPDATE SKIP LOCKED``)."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from studio.db.generation_models import Generation
from studio.db.training_models import Job
from studio.services.generation import EngineProvider, GenerateInput, GenerationResult, GenerationService
from studio.services.generation_save import GenerationSaver
from studio.services.generation_worker import GenerationJobRunner
from studio.services.views import Actor
from studio.training.worker import Worker

pytestmark = pytest.mark.both_databases
MIA = Actor.user("mia")


@pytest.fixture
def web(studio: Any, model_dir: Path) -> GenerationService:
    """The web app's generation service in queue mode, with an engine of its own that only validates (new
    requests name the batch-invariant kernels: the workers batch)."""
    from studio.engine.generate import Engine

    settings = dataclasses.replace(studio.settings, generation="queue", max_queued_per_user=8)
    own = Engine(str(model_dir), device="cpu", batch_invariant=settings.invariant_kernels)
    return GenerationService(studio.sessions, settings, EngineProvider(settings, factory=lambda: own))


@pytest.fixture
def calls(engine: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of images of each pipeline call the engine makes (a counting wrapper, not a mock)."""
    seen: list[int] = []
    real = type(engine).call_images

    def counting(self: Any, pipe: Any, prepared: Any, kwargs: dict, *rest: Any) -> Any:
        prompt = kwargs["prompt"]
        seen.append(len(prompt) if isinstance(prompt, list) else 1)
        return real(self, pipe, prepared, kwargs, *rest)

    monkeypatch.setattr(type(engine), "call_images", counting)
    return seen


def _queue_all(web: GenerationService, studio: Any, inputs: list[GenerateInput]) -> list[Any]:
    """Each request from its own thread (as browsers would); returns once all are queued."""
    results: list[Any] = [None] * len(inputs)

    def ask(index: int) -> None:
        try:
            results[index] = web.generate(MIA, inputs[index])
        except Exception as error:  # noqa: BLE001 - checked by the test
            results[index] = error

    threads = [threading.Thread(target=ask, args=(i,), daemon=True) for i in range(len(inputs))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while _queued(studio) < len(inputs):
        assert time.monotonic() < deadline, f"the requests were not queued: {results}"
        time.sleep(0.02)
    results.append(threads)
    return results


def _queued(studio: Any) -> int:
    with studio.sessions() as session:
        return session.scalar(select(func.count(Job.id)).where(Job.status == "queued")) or 0


@pytest.fixture
def run_worker(studio: Any, engine: Any) -> Iterator[Any]:
    workers: list[tuple[Worker, threading.Thread]] = []

    def start(batch_max: int) -> Worker:
        saver = GenerationSaver(studio.sessions, studio.settings)
        runner = GenerationJobRunner(studio.sessions, lambda: engine, saver, batch_max=batch_max)
        worker = Worker(studio.settings, poll=0.05, kinds=("generate",), runners={"generate": runner})
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        workers.append((worker, thread))
        return worker

    yield start
    for worker, thread in workers:
        worker.stopping.set()
        thread.join(timeout=60)
        worker.close()


def _wait(results: list[Any]) -> list[GenerationResult]:
    for thread in results.pop():
        thread.join(timeout=120)
    for result in results:
        assert isinstance(result, GenerationResult), result
    return results


def test_compatible_requests_run_as_one_call_with_the_pixels_of_each_alone(
    studio: Any, web: GenerationService, run_worker: Any, calls: list[int]
) -> None:
    inputs = [
        GenerateInput(brand="acme", prompt="a red circle", seed=101),
        GenerateInput(brand="acme", prompt="a blue square", seed=102, batch_size=2),
        GenerateInput(brand="acme", prompt="a white star", seed=103),
        GenerateInput(brand="acme", prompt="a red circle", seed=104, size="wide"),  # another size: apart
    ]
    pending = _queue_all(web, studio, inputs)
    run_worker(batch_max=8)
    queued = _wait(pending)
    assert sorted(calls) == [1, 4]  # the three square requests' 4 images in one call; the wide one alone
    calls.clear()
    for result in queued:  # each image again, alone and inline, from its recipe: the same pixels
        with studio.sessions() as session:
            assert session.get(Generation, result.generation_id).recipe["kernels"] == "batch-invariant"
        for image in result.images:
            again = studio.generation.regenerate(MIA, image.id)
            assert [i.pixel_sha256 for i in again.images] == [image.pixel_sha256], image.id
    assert calls == [1] * 5
    with studio.sessions() as session:
        jobs = session.scalars(select(Job).where(Job.kind == "generate").order_by(Job.id)).all()
        assert [job.status for job in jobs] == ["succeeded"] * 4
        assert len({job.result["generation_id"] for job in jobs}) == 4  # each saved once, apart


@pytest.mark.sqlite_only  # the worker's choice, not the database's: once is enough
def test_requests_on_the_plain_kernels_run_apart(
    studio: Any, web: GenerationService, run_worker: Any, calls: list[int]
) -> None:
    """An old recipe's regenerate (plain kernels) in a batch would not make its recipe's pixels: such a
    request runs alone, each of its images a call of its own."""
    web.engine.batch_invariant = False
    inputs = [
        GenerateInput(brand="acme", prompt="a red circle", seed=7, batch_size=2),
        GenerateInput(brand="acme", prompt="a blue circle", seed=7),
    ]
    pending = _queue_all(web, studio, inputs)
    run_worker(batch_max=8)
    _wait(pending)
    assert calls == [1, 1, 1]


@pytest.mark.sqlite_only  # the worker's choice, not the database's: once is enough
def test_without_batching_every_image_is_a_call_of_its_own(
    studio: Any, web: GenerationService, run_worker: Any, calls: list[int]
) -> None:
    inputs = [GenerateInput(brand="acme", prompt=f"a {c} circle", seed=7) for c in ("red", "blue")]
    pending = _queue_all(web, studio, inputs)
    run_worker(batch_max=1)
    _wait(pending)
    assert calls == [1, 1]
