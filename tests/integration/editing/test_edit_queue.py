"""Edits through the job queue (``STUDIO_GENERATION=queue``, issues 19 and 20), in one process on a real
SQLite file: the web side's EditingService queues each edit as a ``generate`` job naming its stored source
and mask by hash; the real Worker loop (in a thread, with the generation runner and QueuedEdits) runs it and
saves the image with its lineage. Same pixels as inline; the web side's engine loads no pipeline."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import MIA, REX
from PIL import Image, ImageDraw
from sqlalchemy import select

from studio.db.training_models import Job
from studio.errors import StudioError
from studio.services.editing import EditingService, EditInput
from studio.services.editing_queue import QueuedEdits
from studio.services.generation import EngineProvider
from studio.services.generation_save import GenerationSaver
from studio.services.generation_worker import GenerationJobRunner
from studio.training.worker import Worker


@pytest.fixture
def web(studio: Any) -> tuple[EditingService, Any]:
    """The web app's editing service in queue mode, with an engine of its own (to show it loads nothing)."""
    from studio.engine.generate import Engine

    settings = dataclasses.replace(studio.settings, generation="queue")
    own = Engine("embedded:toyworld", device="cpu")
    return EditingService(studio.sessions, settings, EngineProvider(settings, factory=lambda: own)), own


def _worker(studio: Any, engine: Any, edits: QueuedEdits | None) -> Iterator[Worker]:
    saver = GenerationSaver(studio.sessions, studio.settings)
    runner = GenerationJobRunner(studio.sessions, lambda: engine, saver, edits)
    built = Worker(studio.settings, poll=0.05, kinds=("generate",), runners={"generate": runner})
    thread = threading.Thread(target=built.run, daemon=True)
    thread.start()
    yield built
    built.stopping.set()
    thread.join(timeout=60)
    built.close()


@pytest.fixture
def worker(studio: Any, toy_engine: Any) -> Iterator[Worker]:
    yield from _worker(studio, toy_engine, QueuedEdits(studio.settings))


def _mask() -> Image.Image:
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((16, 16, 47, 47), fill=255)
    return mask


def test_a_queued_edit_makes_the_same_pixels_as_inline(
    studio: Any, made: Any, web: tuple[EditingService, Any], worker: Worker
) -> None:
    editing, own_engine = web
    request = EditInput("inpaint", image_id=made.id, seed=9, mask=_mask(), prompt="a blue circle")
    inline = studio.editing.edit(MIA, request)
    steps: list[tuple[int, int]] = []
    queued = editing.edit(MIA, request, progress=lambda step, total: steps.append((step, total)))
    assert queued.image.pixel_sha256 == inline.image.pixel_sha256 and queued.image.id != inline.image.id
    assert (queued.kind, queued.parent_image_id, queued.mask_blur) == ("inpaint", made.id, 4)
    assert queued.source_path == inline.source_path and queued.mask_path == inline.mask_path
    assert steps and steps[-1] == (6, 6)  # the brand's 6 steps at strength 1, read from the row
    lineage = studio.editing.lineage(MIA, made.id)
    assert queued.image.id in [child.image.id for child in lineage.children]
    with studio.sessions() as session:
        (job,) = session.scalars(select(Job).where(Job.kind == "generate")).all()
        assert (job.status, job.created_by, job.worker_id) == ("succeeded", "mia", worker.worker_id)
        assert job.config["edit"]["kind"] == "inpaint" and job.result["image_ids"] == [queued.image.id]
        assert job.config["edit"]["source_sha256"] == inline.source_path.stem
    assert not own_engine.pipelines._models  # noqa: SLF001 - the web process ran no model


def test_a_queued_img2img_fixes_its_seed_and_keeps_colours_as_inline(
    studio: Any, made: Any, web: tuple[EditingService, Any], worker: Worker
) -> None:
    editing, _ = web
    queued = editing.edit(MIA, EditInput("img2img", image_id=made.id, strength=0.3))
    with studio.sessions() as session:
        job = session.scalar(select(Job).where(Job.kind == "generate"))
        assert job.config["request"]["seed"] == queued.image.seed  # a rerun elsewhere: the same pixels
        assert job.config["edit"]["strength"] == 0.3
    again = studio.generation.regenerate(MIA, queued.image.id).images[0]
    assert again.pixel_sha256 == queued.image.pixel_sha256


def test_a_worker_without_edits_fails_the_job_rather_than_generate(
    studio: Any, made: Any, web: tuple[EditingService, Any], toy_engine: Any
) -> None:
    editing, _ = web
    for _ in _worker(studio, toy_engine, None):
        with pytest.raises(StudioError, match="this worker does not run edits"):
            editing.edit(MIA, EditInput("img2img", image_id=made.id, seed=2, strength=0.5))


def test_a_queued_campaign_is_one_job_per_preset_sharing_a_group(
    studio: Any, made: Any, web: tuple[EditingService, Any], worker: Worker
) -> None:
    editing, _ = web
    studio.review.approve(REX, made.id)
    campaign = editing.expand_to_all_presets(MIA, EditInput("expand", image_id=made.id, seed=3))
    assert sorted((e.image.width, e.image.height) for e in campaign.edits) == [(64, 112), (112, 64)]
    assert {e.group_id for e in campaign.edits} == {campaign.group_id}
    assert [e.image.id for e in studio.editing.group(MIA, campaign.group_id)] == [
        e.image.id for e in campaign.edits
    ]
    with studio.sessions() as session:
        jobs = session.scalars(select(Job).where(Job.kind == "generate")).all()
        assert [job.config["edit"]["group_id"] for job in jobs] == [campaign.group_id] * 2
