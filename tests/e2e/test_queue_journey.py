"""Issue 20's "Done when": the marketer's journey in Chromium against a studio spread over processes, as on
several machines: a private PostgreSQL server, ``python app.py`` with ``STUDIO_GENERATION=queue`` and no
worker of its own, and two ``studio worker --kinds generate`` processes (``STUDIO_GENERATION_BATCH_MAX=4``).

The marketer signs in, picks the brand and generates while another marketer's three compatible requests
arrive through the API; the workers start once all four are queued, so the first to claim holds several
(one batch, with batching). That worker is killed with SIGKILL after its first denoising step. Nothing is
lost: the other worker makes those requests again, the page shows the images, every request ends with its
images, each saved once, with the pixels an inline run of the same recipe makes. Then the progress line
counts steps, Cancel stops a long run, and the Gallery lists the marketer's images.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_support import assert_no_error_state, login
from engine_fixtures import fast_cpu, sd1_dir  # noqa: F401
from playwright.sync_api import expect
from sqlalchemy import func, select
from support.queue_cluster import (
    LOADS_A_PIPELINE,
    PASSWORD,
    Cluster,
    add_acme,
    queue_cluster,
    running_jobs,
    wait_for,
)
from test_generate_tab_1366 import PROGRESS, number_input, set_form

from studio.db.generation_models import Generation, Image
from studio.db.training_models import Job
from studio.services.views import Actor

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.parametrize(  # PostgreSQL only: the database several machines share
        "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
    ),
]

STEPS = 40  # per image: long enough to be killed after a step, short on the tiny model
OTHERS = (101, 102, 103)  # the other marketer's seeds (one image each)
LONG = 120_000  # ms: a busy 2-core box


@pytest.fixture
def cluster(services: Any, sd1_dir: Path) -> Iterator[Cluster]:  # noqa: F811
    """Brand acme (marketers mia and noa), the web app in queue mode; the workers start in the test."""
    add_acme(services, sd1_dir, marketers=("mia", "noa"))
    with queue_cluster(services, sd1_dir, workers=0, STUDIO_GENERATION_BATCH_MAX="4") as started:
        yield started


def generate_jobs(services: Any) -> list[Job]:
    with services.sessions() as session:
        return list(session.scalars(select(Job).where(Job.kind == "generate").order_by(Job.id)))


def batch_running(services: Any) -> tuple[str, list[int]] | None:
    """(worker id, job ids) of a worker past the first step of a batch of several requests, if one is."""
    held: dict[str, list[int]] = {}
    for job in generate_jobs(services):
        if job.status == "running" and job.worker_id:
            held.setdefault(job.worker_id, []).append(job.id)
    stepping = {j.worker_id for j in running_jobs(services)}
    return next(((w, ids) for w, ids in held.items() if len(ids) > 1 and w in stepping), None)


def test_marketer_journey_on_two_queue_workers_one_killed_mid_batch(
    services: Any, cluster: Cluster, browser: Any
) -> None:
    from gradio_client import Client

    page = login(browser, cluster.app.url, "mia", PASSWORD)
    page.get_by_role("tab", name="Generate").click()
    page.get_by_label("Brand", exact=True).first.click()
    options = [o.replace("✓", "").strip() for o in page.get_by_role("option").all_inner_texts()]
    assert options == ["Acme"], options
    page.get_by_role("option", name="Acme").click()
    expect(number_input(page, "Steps")).to_have_value("3", timeout=30_000)  # the brand's defaults are in
    page.get_by_label("Prompt", exact=True).fill("a red circle")
    set_form(page, Steps=str(STEPS), Images="2", Seed="77")

    # noa's three compatible requests through the API, and mia's through the page: four queued jobs
    answers: dict[int, Any] = {}
    client = Client(cluster.app.url, auth=("noa", PASSWORD), verbose=False)

    def ask(seed: int) -> None:
        answers[seed] = client.predict(
            brand="acme", prompt="a blue square", seed=seed, steps=STEPS, api_name="/generate_api"
        )

    calls = [threading.Thread(target=ask, args=(seed,)) for seed in OTHERS]
    for call in calls:
        call.start()
    page.locator("#gen-generate").click()
    progress = page.locator("#gen-progress")
    queued = lambda: len(generate_jobs(services)) == 4  # noqa: E731
    wait_for(queued, 60, "four queued jobs", lambda: (progress.inner_text(), generate_jobs(services)))

    cluster.start_workers(2)  # the first to claim takes several compatible requests: one batch
    wait_for(lambda: batch_running(services), 120, "a worker generating several requests at once")
    worker_id, held = batch_running(services)
    victim = next(w for w in cluster.workers if f":{w.pid}:" in worker_id)
    os.kill(victim.pid, signal.SIGKILL)  # mid-batch: no chance to hand its jobs back
    victim.wait(timeout=30)

    progress.get_by_text("Done: 2 images").wait_for(timeout=LONG)
    page.wait_for_function("document.querySelectorAll('#gen-results img').length === 2", timeout=30_000)
    for call in calls:
        call.join(timeout=120)
    assert sorted(answers) == list(OTHERS), cluster.logs()
    assert all(len(a["images"]) == 1 for a in answers.values()), answers
    assert_no_error_state(page, "after the killed worker's jobs ran again")

    with services.sessions() as session:  # every request saved once, by the worker that finished it
        jobs = generate_jobs(services)
        assert [j.status for j in jobs] == ["succeeded"] * 4, [(j.id, j.status, j.message) for j in jobs]
        again = [(j.id, j.attempts, j.worker_id) for j in jobs if j.id in held]
        assert all(n >= 2 and by != worker_id for _, n, by in again), (worker_id, again)
        made = [int(j.result["generation_id"]) for j in jobs]
        assert len(set(made)) == 4 and session.scalar(select(func.count(Generation.id))) == 4
        assert session.scalar(select(func.count(Image.id))) == 5
        rerun = [  # (image id, pixels) of the killed worker's requests, as the other worker made them
            (i.id, i.pixel_sha256)
            for j in jobs
            if j.id in held
            for i in session.get(Generation, int(j.result["generation_id"])).images
        ]

    # the progress line counts steps, and Cancel stops a long run (the biggest run sd1 allows, 128 px)
    page.get_by_label("Size", exact=True).first.click()
    page.get_by_role("option", name=re.compile("poster")).click()
    set_form(page, Steps="50", Images="4", Seed="5")
    page.locator("#gen-generate").click()
    progress.get_by_text(PROGRESS).wait_for(timeout=LONG)
    assert re.search(r"step \d+/50 · image \d/4", progress.inner_text()), progress.inner_text()
    page.locator("#gen-cancel").click()
    progress.get_by_text(re.compile(r"Cancelled")).wait_for(timeout=LONG)
    assert generate_jobs(services)[-1].status == "cancelled"
    with services.sessions() as session:
        mine = session.scalar(
            select(func.count(Image.id)).join(Generation).where(Generation.prompt == "a red circle")
        )

    page.get_by_role("tab", name="Gallery").click()
    page.get_by_role("button", name="Search", exact=True).filter(visible=True).first.click()
    page.get_by_text(f"{mine} image(s)").wait_for(timeout=60_000)  # mia's own, none of noa's
    assert_no_error_state(page, "gallery")

    for image_id, pixels in rerun:  # same seed, same pixels as inline (the test process runs the engine)
        again = services.generation.regenerate(Actor.user("ada"), image_id)
        assert [i.pixel_sha256 for i in again.images] == [pixels], image_id
    assert LOADS_A_PIPELINE not in cluster.app.log.read_text()  # the web process loaded no model
