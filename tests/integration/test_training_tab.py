"""The Training tab's named endpoints through ``gradio_client`` with a login, on a real local server built as
``app.py`` builds it: an admin creates a dataset, uploads images, captions, checks and queues a job; a
marketer is refused by the services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gradio_http import GradioSession
from live_server import DEMO_PASSWORD as PASSWORD
from live_server import demo_server_fixture  # noqa: F401 (the demo_server fixture)
from PIL import Image

from studio.services.views import SYSTEM


def test_admin_builds_a_dataset_and_queues_training(services: Any, demo_server: str, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    ada = Client(demo_server, auth=("ada", PASSWORD), verbose=False)
    created = ada.predict("lagoon", "teal set", api_name="/create_dataset")
    dataset_id = services.datasets.list_datasets(SYSTEM, "lagoon")[0].id
    assert created["value"] == dataset_id
    files = []
    for i, colour in enumerate([(245, 135, 25), (245, 220, 40), (0, 128, 128)]):
        path = tmp_path / f"orange_circle_{i}.png"
        Image.new("RGB", (64, 64), colour).save(path)
        files.append(handle_file(str(path)))
    table, note, _ = ada.predict(dataset_id, files, api_name="/add_images")
    assert "Added 3 image(s)" in note and len(table["data"]) == 3
    table = ada.predict(dataset_id, "file name", "", "", "", api_name="/caption_all")
    assert [row[2] for row in table["data"]] == ["orange circle"] * 3
    table = ada.predict(
        dataset_id, "template", "{caption}, {trigger}", "", "lagoon-style", api_name="/caption_all"
    )
    assert {row[2] for row in table["data"]} == {"orange circle, lagoonstyle"}
    report = ada.predict(dataset_id, "", "lagoon-style", api_name="/check_dataset")
    assert "3 image(s)" in report and "ready to train" in report
    job_id = ada.predict(
        "lagoon", dataset_id, "lagoon-style", "style", "", "quick",
        True, 2, 2, 0.001, 5, 1, 0, 5, "auto", "adamw", "none", api_name="/queue_training",
    )  # fmt: skip
    job = services.training.get_job(SYSTEM, int(job_id))
    assert (job.status, job.total_steps, job.config["rank"]) == ("queued", 5, 2)
    rows = ada.predict(api_name="/training_jobs")
    assert rows["data"][0][:2] == [job.id, "queued"]
    assert "cancelled" in ada.predict(job.id, api_name="/cancel_job")
    with pytest.raises(Exception, match="no checkpoint"):
        ada.predict(job.id, None, api_name="/publish_checkpoint")

    mia = Client(demo_server, auth=("mia", PASSWORD), verbose=False)
    with pytest.raises(Exception, match="admin"):
        mia.predict(api_name="/training_jobs")
    with pytest.raises(Exception, match="admin"):
        mia.predict("lagoon", "mine", api_name="/create_dataset")


def _followers(config: dict[str, Any], api_name: str, fn: str) -> list[dict[str, Any]]:
    """The events that run ``fn`` after the named endpoint succeeds."""
    deps = config["dependencies"]
    first = next(d for d in deps if d.get("api_name") == api_name)
    return [
        d
        for d in deps
        if d.get("trigger_after") == first["id"]
        and d.get("trigger_only_on_success")
        and (d.get("api_name") or "").startswith(fn)
    ]


def test_dataset_labels_count_the_images_after_an_upload(
    services: Any, demo_server: str, tmp_path: Path
) -> None:
    from gradio_client import Client, handle_file

    ada = Client(demo_server, auth=("ada", PASSWORD), verbose=False)
    older = ada.predict("lagoon", "older set", api_name="/create_dataset")["value"]
    newer = ada.predict("lagoon", "teal set", api_name="/create_dataset")["value"]
    path = tmp_path / "teal_circle.png"
    Image.new("RGB", (64, 64), (0, 128, 128)).save(path)
    ada.predict(newer, [handle_file(str(path))], api_name="/add_images")

    with GradioSession(demo_server) as page:
        assert page.login("ada", PASSWORD).status_code == 200
        config = page.config()
        dropdown = next(c["id"] for c in config["components"] if c["props"].get("label") == "Dataset")
        for saved in ("add_images", "create_dataset"):
            (refresh,) = _followers(config, saved, "refresh_datasets")
            assert refresh["outputs"] == [dropdown]
            assert refresh["api_visibility"] == "private"
            answer = page.call(refresh["id"], ["lagoon", newer])
            assert answer.ok, answer.error
            update = answer.data[0]
            assert update["value"] == newer  # the chosen dataset stays chosen
            assert [tuple(c) for c in update["choices"]] == [
                (f"#{newer} teal set (1)", newer),
                (f"#{older} older set (0)", older),
            ]
