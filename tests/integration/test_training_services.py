"""Dataset and training services on a real SQLite file: uploads, captions, checks, queueing, cancel, resume,
publishing refusals, permissions, the queue's atomic claim and stale-heartbeat recovery. No torch needed."""

from __future__ import annotations

import threading
import zipfile
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import DEMO_BRANDS, files_under, snapshot
from PIL import Image
from sqlalchemy import update

from studio.db.base import utcnow
from studio.db.engine import make_engine, make_session_factory
from studio.db.training_models import Job
from studio.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from studio.services.views import SYSTEM, Actor
from studio.training.queue import JobQueue


def picture(folder: Path, name: str, colour: tuple[int, int, int], size: int = 32) -> Path:
    path = folder / name
    Image.new("RGB", (size, size), colour).save(path)
    return path


@pytest.fixture
def brand(services: Any) -> str:
    services.brands.sync(SYSTEM, DEMO_BRANDS)
    return "lagoon"


@pytest.fixture
def dataset(services: Any, brand: str, tmp_path: Path) -> int:
    view = services.datasets.create_dataset(SYSTEM, brand, "teal shapes")
    files = [picture(tmp_path, f"teal_{i}.png", (0, 128, 100 + i)) for i in range(3)]
    services.datasets.add_images(SYSTEM, view.id, files)
    return view.id


def test_upload_many_and_a_zip_with_duplicates_dropped(services: Any, brand: str, tmp_path: Path) -> None:
    ds = services.datasets.create_dataset(SYSTEM, brand, "set")
    a = picture(tmp_path, "orange_circle.png", (245, 135, 25))
    b = picture(tmp_path, "yellow_square.png", (245, 220, 40))
    result = services.datasets.add_images(SYSTEM, ds.id, [a, b])
    assert result.added == 2 and result.notices == ()
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(a, "again.png")  # same bytes as an image already in the dataset
        zf.write(picture(tmp_path, "c.png", (0, 128, 128)), "teal.png")
        zf.writestr("teal.txt", "a teal background")
    result = services.datasets.add_images(SYSTEM, ds.id, [(archive, "more.zip")])
    assert result.added == 1
    assert len(result.notices) == 1 and "again.png" in result.notices[0]
    images = result.dataset.images
    assert [i.caption for i in images] == ["", "", "a teal background"]
    assert all(
        i.file_path.is_file() and services.settings.datasets_dir in i.file_path.parents for i in images
    )


@pytest.mark.parametrize("bad", ["text", "truncated", "zip-slip"])
def test_bad_uploads_change_nothing(services: Any, dataset: int, tmp_path: Path, bad: str) -> None:
    good = picture(tmp_path, "fine.png", (1, 2, 3))
    if bad == "text":
        evil = tmp_path / "evil.png"
        evil.write_text("not an image")
        upload: list[Any] = [good, evil]
    elif bad == "truncated":
        whole = tmp_path / "whole.png"
        Image.effect_noise((64, 64), 40).convert("RGB").save(whole)
        evil = tmp_path / "cut.png"
        evil.write_bytes(whole.read_bytes()[:300])
        upload = [good, evil]
    else:
        evil = tmp_path / "slip.zip"
        with zipfile.ZipFile(evil, "w") as zf:
            zf.write(good, "ok.png")
            zf.write(good, "../../../outside.png")
        upload = [(evil, "slip.zip")]
    before, files = snapshot(services), files_under(services.settings.datasets_dir)
    with pytest.raises(ValidationError):
        services.datasets.add_images(SYSTEM, dataset, upload)
    assert snapshot(services) == before
    assert files_under(services.settings.datasets_dir) == files
    assert not files_under(services.settings.home / "tmp")


def test_captions_template_filename_and_check(services: Any, dataset: int) -> None:
    check = services.datasets.check_dataset(SYSTEM, dataset, adapter="lagoon-style")
    assert check.count == 3 and check.trigger == "lagoonstyle"
    assert len(check.missing_captions) == 3 and not check.ready
    assert any("no caption" in a for a in check.advice)
    view = services.datasets.caption_all(SYSTEM, dataset, mode="filename")
    assert [i.caption for i in view.images] == ["teal"] * 3
    check = services.datasets.check_dataset(SYSTEM, dataset, adapter="lagoon-style")
    assert len(check.missing_trigger) == 3 and any("trigger word" in a for a in check.advice)
    view = services.datasets.caption_all(
        SYSTEM, dataset, template="{caption}, {trigger}", adapter="lagoon-style"
    )
    assert [i.caption for i in view.images] == ["teal, lagoonstyle"] * 3
    first = view.images[0]
    edited = services.datasets.set_caption(SYSTEM, first.id, "  a teal   square, lagoonstyle ")
    assert edited.caption == "a teal square, lagoonstyle"
    check = services.datasets.check_dataset(SYSTEM, dataset, adapter="lagoon-style")
    assert check.ready and check.sizes == {"32x32": 3}
    assert any("at least 5" in a for a in check.advice)


def test_queue_validates_and_changes_nothing_on_bad_input(services: Any, brand: str, dataset: int) -> None:
    empty = services.datasets.create_dataset(SYSTEM, brand, "empty")
    before = snapshot(services)
    with pytest.raises(ValidationError, match="no images"):
        services.training.queue_training(SYSTEM, brand, "lagoon-style", empty.id)
    with pytest.raises(ValidationError) as info:
        services.training.queue_training(SYSTEM, brand, "lagoon-style", dataset, rank=0)
    assert info.value.field == "rank"
    with pytest.raises(ValidationError) as info:
        services.training.queue_training(SYSTEM, brand, "lagoon-style", dataset, steps=10**7)
    assert info.value.field == "steps"
    with pytest.raises(ValidationError, match="trigger"):
        services.training.queue_training(SYSTEM, brand, "brand-new", dataset)
    with pytest.raises(NotFoundError):
        services.training.queue_training(SYSTEM, "ember", "ember-style", dataset)  # not ember's dataset
    assert snapshot(services) == before


def test_queue_cancel_resume_and_publish_refusals(services: Any, brand: str, dataset: int) -> None:
    job = services.training.queue_training(SYSTEM, brand, "lagoon-style", dataset, preset="quick", steps=7)
    assert (job.status, job.total_steps, job.config["trigger"], job.config["rank"]) == (
        "queued",
        7,
        "lagoonstyle",
        4,
    )
    with pytest.raises(ConflictError, match="queued"):
        services.training.publish(SYSTEM, job.id)
    cancelled = services.training.cancel(SYSTEM, job.id)
    assert cancelled.status == "cancelled"
    with pytest.raises(ConflictError):
        services.training.cancel(SYSTEM, job.id)
    resumed = services.training.resume(SYSTEM, job.id)
    assert resumed.status == "queued" and resumed.resume_from == 0
    # a failed job cannot be published: clear error, nothing changed
    queue = JobQueue(services.sessions)
    claimed = queue.claim("w1")
    assert claimed is not None and claimed.id == job.id
    assert queue.finish(job.id, "w1", "failed", "training crashed: boom")
    before = snapshot(services)
    with pytest.raises(ConflictError, match="failed"):
        services.training.publish(SYSTEM, job.id)
    assert snapshot(services) == before
    assert [j.id for j in services.training.list_jobs(SYSTEM, status="failed")] == [job.id]


def test_training_is_for_admins_only(services: Any, brand: str, dataset: int) -> None:
    services.users.add_user(SYSTEM, "mia", ["marketer"], "a-long-password-1")
    services.brands.grant(SYSTEM, brand, "mia")
    mia = Actor.user("mia")
    with pytest.raises(PermissionDeniedError):
        services.datasets.create_dataset(mia, brand, "mine")
    with pytest.raises(PermissionDeniedError):
        services.datasets.get_dataset(mia, dataset)
    with pytest.raises(PermissionDeniedError):
        services.training.queue_training(mia, brand, "lagoon-style", dataset)
    with pytest.raises(PermissionDeniedError):
        services.training.list_jobs(mia)


def test_two_workers_claiming_concurrently_never_share_a_job(services: Any, brand: str, dataset: int) -> None:
    ids = [
        services.training.queue_training(SYSTEM, brand, "lagoon-style", dataset, steps=5, priority=i % 3).id
        for i in range(12)
    ]
    claims: list[tuple[str, int]] = []
    lock, start = threading.Lock(), threading.Barrier(4)

    def worker(name: str) -> None:
        engine = make_engine(services.settings.database_url)  # its own connections, like another process
        queue = JobQueue(make_session_factory(engine))
        start.wait()
        try:
            while (job := queue.claim(name)) is not None:
                with lock:
                    claims.append((name, job.id))
        finally:
            engine.dispose()

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    counts = Counter(job_id for _, job_id in claims)
    assert sorted(counts) == sorted(ids) and set(counts.values()) == {1}
    for view in services.training.list_jobs(SYSTEM):
        assert view.status == "running" and (view.worker_id, view.id) in claims


def test_claim_order_stale_heartbeat_and_ownership(services: Any, brand: str, dataset: int) -> None:
    low = services.training.queue_training(SYSTEM, brand, "lagoon-style", dataset, steps=5).id
    high = services.training.queue_training(SYSTEM, brand, "lagoon-style", dataset, steps=5, priority=5).id
    queue = JobQueue(services.sessions)
    assert queue.claim("a").id == high  # type: ignore[union-attr]
    assert queue.claim("b").id == low  # type: ignore[union-attr]
    assert queue.claim("c") is None
    assert queue.poll(high, "a").lost is False and queue.poll(high, "b").lost is True
    services.training.cancel(SYSTEM, high)
    assert queue.poll(high, "a").cancel is True
    # b's heartbeat goes stale: b's job is interrupted, a's fresh one is not
    with services.sessions.begin() as session:
        session.execute(update(Job).where(Job.id == low).values(heartbeat_at=utcnow() - timedelta(minutes=5)))
    assert queue.mark_stale(60) == [low]
    assert services.training.get_job(SYSTEM, low).status == "interrupted"
    assert queue.heartbeat(low, "b").lost  # b can no longer write to it
    assert not queue.finish(low, "b", "succeeded", "late")
    assert services.training.resume(SYSTEM, low).status == "queued"
