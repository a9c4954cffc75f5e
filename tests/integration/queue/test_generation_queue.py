"""Generation through the queue (issue 20, item 2), in one process: a web-side GenerationService in
``STUDIO_GENERATION=queue`` mode queues each request as a ``generate`` job; a worker (the real Worker loop
with the generation runner, in a thread, with its own engine) claims and runs it. Same pixels as inline, the
progress and the result from the job row, Cancel through the row, the per-user limit, a job handed to
another worker is not saved twice, and the web side's engine loads no pipeline."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import files_under
from sqlalchemy import select, update

from studio.db.generation_models import Generation
from studio.db.training_models import Job
from studio.engine.request import GenerationRequest
from studio.errors import CancelledError, ConflictError, StudioError
from studio.services import generation_worker
from studio.services.generation import EngineProvider, GenerateInput, GenerationService
from studio.services.generation_job_rows import decode, encode, from_config
from studio.services.generation_plan import Plan
from studio.services.generation_save import GenerationSaver
from studio.services.generation_worker import GenerationJobRunner
from studio.services.views import Actor
from studio.training.queue import JobQueue
from studio.training.worker import Worker

pytestmark = pytest.mark.both_databases
MIA = Actor.user("mia")


@pytest.fixture
def web(studio: Any, model_dir: Path) -> GenerationService:
    """The web app's generation service in queue mode, with an engine of its own (to show it loads
    nothing)."""
    from studio.engine.generate import Engine

    settings = dataclasses.replace(studio.settings, generation="queue", max_queued_per_user=2)
    own = Engine(str(model_dir), device="cpu")
    return GenerationService(studio.sessions, settings, EngineProvider(settings, factory=lambda: own))


@pytest.fixture
def worker(studio: Any, engine: Any) -> Iterator[Worker]:
    """A worker claiming generation jobs, in a thread, with the module's engine."""
    runner = GenerationJobRunner(
        studio.sessions, lambda: engine, GenerationSaver(studio.sessions, studio.settings)
    )
    built = Worker(studio.settings, poll=0.05, kinds=("generate",), runners={"generate": runner})
    thread = threading.Thread(target=built.run, daemon=True)
    thread.start()
    yield built
    built.stopping.set()
    thread.join(timeout=60)
    built.close()


def test_a_queued_request_makes_the_same_pixels_as_inline(studio: Any, web: Any, worker: Worker) -> None:
    request = GenerateInput(brand="acme", prompt="a red circle", batch_size=2, seed=1234, steps=20)
    inline = studio.generation.generate(MIA, request)
    steps: list[tuple[int, int]] = []
    queued = web.generate(MIA, request, progress=lambda s, t: steps.append((s, t)))
    assert [i.pixel_sha256 for i in queued.images] == [i.pixel_sha256 for i in inline.images]
    assert [i.seed for i in queued.images] == [1234, 1235] and queued.generation_id != inline.generation_id
    assert queued.prompt == inline.prompt and all(i.path.is_file() for i in queued.images)
    assert steps[-1] == (40, 40) and steps == sorted(steps)  # 20 steps x 2 images, read from the row
    with studio.sessions() as session:
        (job,) = session.scalars(select(Job).where(Job.kind == "generate")).all()
        assert (job.status, job.created_by, job.worker_id) == ("succeeded", "mia", worker.worker_id)
        assert job.result["generation_id"] == queued.generation_id
        assert job.result["image_ids"] == [i.id for i in queued.images]
    web_engine = web.engine
    assert not web_engine.pipelines._models and not web_engine.pipelines._controlnets  # noqa: SLF001


def test_a_random_seed_is_fixed_when_queued(studio: Any, web: Any, worker: Worker) -> None:
    result = web.generate(MIA, GenerateInput(brand="acme", prompt="a red circle"))
    with studio.sessions() as session:
        job = session.scalar(select(Job).where(Job.kind == "generate"))
        assert job.config["request"]["seed"] == result.seed  # a rerun elsewhere makes the same pixels


def test_the_row_holds_the_plan_and_request_whole(studio: Any) -> None:
    """What the worker decodes is what the web app planned: LoRAs (paths), template, guidance, seed."""
    from studio.services.generation_plan import Planner

    planner: Planner = studio.generation._planner  # noqa: SLF001
    with studio.sessions() as session:
        plan = planner.plan(
            session, MIA, GenerateInput(brand="acme", prompt="a red circle", templates=("frame",))
        )
    request = studio.engines.get().validate(plan.request)
    assert plan.loras and plan.templates
    assert decode(Plan, json.loads(json.dumps(encode(plan)))) == plan
    assert decode(GenerationRequest, json.loads(json.dumps(encode(request)))) == request
    config = json.loads(json.dumps({"actor": "mia", "plan": encode(plan), "request": encode(request)}))
    assert from_config(config) == (MIA, plan, request)


def test_cancel_of_a_queued_request_reaches_the_row(studio: Any, web: Any) -> None:
    cancel = threading.Event()
    cancel.set()  # no worker runs: the request is cancelled while it waits
    with pytest.raises(CancelledError):
        web.generate(MIA, GenerateInput(brand="acme", prompt="a red circle"), cancel=cancel)
    with studio.sessions() as session:
        assert session.scalar(select(Job.status).where(Job.kind == "generate")) == "cancelled"


def test_cancel_of_a_running_request_keeps_the_finished_images(
    studio: Any, web: Any, worker: Worker, monkeypatch: pytest.MonkeyPatch
) -> None:
    # each worker step takes at least 25 ms, so the cancel (one poll on each side, 0.2 s) reaches the worker
    # before the last image is done even on an idle machine, where the tiny model's 80 steps take under 0.5 s
    report = generation_worker._Follow.__call__  # noqa: SLF001

    def slow_step(follow: Any, step: int, total: int) -> None:
        report(follow, step, total)
        time.sleep(0.025)

    monkeypatch.setattr(generation_worker._Follow, "__call__", slow_step)  # noqa: SLF001
    cancel = threading.Event()

    def after_the_first_image(step: int, total: int) -> None:
        if step >= total // 4 + 1:  # the worker reported a step of the second image
            cancel.set()

    result = web.generate(
        MIA, GenerateInput(brand="acme", prompt="a red circle", batch_size=4, steps=20),
        progress=after_the_first_image, cancel=cancel,
    )  # fmt: skip
    assert result.cancelled and result.requested == 4 and 1 <= len(result.images) < 4
    with studio.sessions() as session:
        job = session.scalar(select(Job).where(Job.kind == "generate"))
        assert job.status == "cancelled" and job.result["image_ids"] == [i.id for i in result.images]


def test_a_user_may_have_the_limit_queued_and_no_more(studio: Any, web: Any) -> None:
    with studio.sessions.begin() as session:  # two requests of mia's wait (no worker runs)
        for _ in range(2):
            JobQueue.enqueue(session, kind="generate", config={}, total_steps=1, created_by="mia")
    before = files_under(studio.settings.home)
    with pytest.raises(ConflictError, match=r"you already have 2 generation requests .*at most 2"):
        web.generate(MIA, GenerateInput(brand="acme", prompt="a red circle"))
    assert files_under(studio.settings.home) == before
    with studio.sessions() as session:
        assert session.scalar(select(Job.id).where(Job.created_by == "mia").order_by(Job.id.desc())) == 2


def test_a_job_taken_over_by_another_worker_is_not_saved_twice(studio: Any, web: Any, engine: Any) -> None:
    """A slow worker's heartbeat went stale and the job went to another: when the slow one finishes, its
    images are thrown away (the save and the end of the job are one transaction)."""
    queue = JobQueue(studio.sessions)
    runner = GenerationJobRunner(
        studio.sessions, lambda: engine, GenerationSaver(studio.sessions, studio.settings)
    )
    waiting = threading.Thread(
        target=lambda: pytest.raises(StudioError, web.generate, MIA, GenerateInput(brand="acme", prompt="x")),
        daemon=True,
    )
    waiting.start()
    job = None
    while job is None:
        job = queue.claim("slow", kinds=("generate",))
    with studio.sessions.begin() as session:  # taken over: another worker owns it now
        session.execute(update(Job).where(Job.id == job.id).values(worker_id="other"))
    images_before = files_under(studio.settings.images_dir)
    assert runner(queue, job) == "lost"
    assert files_under(studio.settings.images_dir) == images_before
    with studio.sessions() as session:
        assert session.scalars(select(Generation)).all() == []
    with studio.sessions.begin() as session:  # (let the waiting web request end)
        session.execute(update(Job).where(Job.id == job.id).values(status="failed", result={"error": {}}))
    waiting.join(timeout=30)


def test_a_request_with_no_worker_alive_ends_with_an_error_saying_to_start_one(
    studio: Any, model_dir: Path
) -> None:
    from studio.engine.generate import Engine

    settings = dataclasses.replace(studio.settings, generation="queue", worker_wait_seconds=1)
    own = Engine(str(model_dir), device="cpu")
    web = GenerationService(studio.sessions, settings, EngineProvider(settings, factory=lambda: own))
    started = time.monotonic()
    with pytest.raises(ConflictError, match=r"no generation worker .*studio worker --kinds generate"):
        web.generate(MIA, GenerateInput(brand="acme", prompt="a red circle"))
    assert time.monotonic() - started < 30
    with studio.sessions() as session:
        job = session.scalar(select(Job).where(Job.kind == "generate"))
        assert job.status == "cancelled" and "no generation worker" in job.message
