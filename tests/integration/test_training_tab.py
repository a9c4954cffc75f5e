"""The Training tab's named endpoints through ``gradio_client`` with a login, on a real local server built as
``app.py`` builds it: an admin creates a dataset, uploads images, captions, checks and queues a job; a
marketer is refused by the services."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from engine_fixtures import fast_cpu  # noqa: F401 (one torch thread on the shared CPU)
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
    job_id, queued = ada.predict(
        "lagoon", dataset_id, "lagoon-style", "style", "", "quick",
        True, 2, 2, 0.001, 5, 1, 0, 5, "auto", "adamw", "none", api_name="/queue_training",
    )  # fmt: skip
    job = services.training.get_job(SYSTEM, int(job_id))
    assert (job.status, job.total_steps, job.config["rank"]) == ("queued", 5, 2)
    assert f"Job #{job.id} queued" in queued
    rows = ada.predict(api_name="/training_jobs")
    assert rows["data"][0][:2] == [job.id, "queued"]
    assert "cancelled" in ada.predict(job.id, api_name="/cancel_job")  # (the API leaves out the buttons)
    refused, _ = ada.predict(job.id, None, False, api_name="/publish_checkpoint")
    assert "no checkpoint" in refused  # a message, not an error

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


def _named_dep(config: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next(d for d in config["dependencies"] if (d.get("api_name") or "").startswith(prefix))


def _by_label(config: dict[str, Any], dep: dict[str, Any], data: list[Any]) -> dict[str, Any]:
    components = {c["id"]: c for c in config["components"]}
    found: dict[str, Any] = {}
    for cid, value in zip(dep["outputs"], data, strict=True):
        kind, props = components[cid]["type"], components[cid]["props"]
        found[props.get("label") or (props.get("value") if kind == "button" else None) or kind] = value
    return found


def _controls(shown: dict[str, Any]) -> list[bool]:
    """Whether Cancel, Resume and Publish are enabled in an event's outputs."""
    return [shown[n]["interactive"] for n in ("Cancel", "Resume", "Publish as the brand's active LoRA")]


def test_job_field_starts_empty_and_controls_follow_the_job(services: Any, demo_server: str) -> None:
    with GradioSession(demo_server) as page:
        assert page.login("ada", PASSWORD).status_code == 200
        config = page.config()
        field = next(c for c in config["components"] if c["props"].get("label") == "Job")
        assert field["props"].get("value") in (None, "") and field["props"]["placeholder"]
        buttons = {c["props"].get("value"): c["props"] for c in config["components"] if c["type"] == "button"}
        for name in ("Cancel", "Resume", "Publish as the brand's active LoRA"):
            assert buttons[name]["interactive"] is False  # no job yet: nothing to act on
        show = _named_dep(config, "show_job")
        answer = page.call(show["id"], [None])
        assert answer.ok, answer.error
        empty = _by_label(config, show, answer.data)
        assert "Click a job" in empty["html"]

        dataset = services.datasets.create_dataset(SYSTEM, "lagoon", "one").id
        path = Path(services.settings.home) / "teal.png"
        Image.new("RGB", (64, 64), (0, 128, 128)).save(path)
        services.datasets.add_images(SYSTEM, dataset, [path])
        job = services.training.queue_training(SYSTEM, "lagoon", "lagoon-style", dataset, steps=2)
        answer = page.call(show["id"], [job.id])
        assert answer.ok, answer.error
        shown = _by_label(config, show, answer.data)
        assert _controls(shown) == [True, False, False]  # queued: only Cancel
        cancel = _named_dep(config, "cancel_job")
        answer = page.call(cancel["id"], [job.id])
        assert answer.ok, answer.error
        assert _controls(_by_label(config, cancel, answer.data)) == [False, True, False]  # then only Resume


def _off_palette_job(services: Any, folder: Path) -> int:
    """A real job on the embedded model whose LoRA pulls ember off its palette (yellow on white, captioned
    as the gate's prompt); two checkpoints. At learning rate 0.02 the first keeps the base's palette and
    adherence (the best), the second lowers both (0.99 → 0.51); at 0.05 both lose everything on the 32-token
    model (no best), at 0.01 neither moves."""
    from studio.toyworld import world
    from studio.training.worker import Worker

    ds = services.datasets.create_dataset(SYSTEM, "ember", "off palette")
    files = []
    for i, position in enumerate(("center", "left", "right", "top")):
        path = folder / f"yellow_square_{i}.png"
        world.render(world.Scene("yellow", "square", "white", position)).save(path)
        files.append(path)
    services.datasets.add_images(SYSTEM, ds.id, files)
    prompt = "{trigger}, a red circle on a black background"
    services.datasets.caption_all(SYSTEM, ds.id, template=prompt, trigger="worsesty")
    job = services.training.queue_training(
        SYSTEM, "ember", "ember-worse", ds.id, trigger="worsesty", preset="quick", steps=4,
        checkpoint_every=2, learning_rate=0.02, batch_size=4, sample_steps=8, sample_prompts=[prompt],
        sample_seeds=[5],
    )  # fmt: skip
    worker = Worker(services.settings)
    try:
        assert worker.run_once() == "succeeded"
    finally:
        worker.close()
    return job.id


@pytest.mark.usefixtures("fast_cpu")
def test_quality_grid_table_best_mark_and_confirmed_publish(
    services: Any, demo_server: str, tmp_path: Path
) -> None:
    from gradio_client import Client

    job_id = _off_palette_job(services, tmp_path)
    job = services.training.get_job(SYSTEM, job_id)
    assert job.best_step is not None
    with GradioSession(demo_server) as page:
        assert page.login("ada", PASSWORD).status_code == 200
        config = page.config()
        show = _named_dep(config, "show_job")
        answer = page.call(show["id"], [job_id])
        assert answer.ok, answer.error
        shown = _by_label(config, show, answer.data)
        gate = shown["Quality gate"]
        assert "palette (no LoRA → LoRA)" in gate and "adherence" in gate and "trigger" in gate
        assert gate.count("★ best") == 1 and f'<tr class="best"><td class="">{job.best_step}</td>' in gate
        assert "⚠ lowers the palette score" in gate
        # the grid: each prompt and seed, without and with the LoRA, side by side (images the server serves)
        best = next(c for c in job.checkpoints if c.step == job.best_step)
        for key in ("base", "lora", "lora_plain"):  # links only admins can open, no server path
            name = best.quality_images[key][0].name
            assert f"/studio/files/training/{job_id}/{best.step}/{key}/0/{name}" in gate
        assert str(best.quality_images["base"][0].parent) not in gate
        base = best.quality_images["base"][0].name
        image = page.http.get(f"/studio/files/training/{job_id}/{best.step}/base/0/{base}")
        assert image.status_code == 200 and image.content[:4] == b"\x89PNG"
        assert shown["Checkpoint step to publish"]["value"] == job.best_step  # the best is chosen first
        assert _controls(shown) == [False, False, True]  # succeeded with checkpoints: only Publish
        captions = [item["caption"] for item in shown["Checkpoint samples (fixed prompts and seeds)"]]
        assert captions and all(c.startswith("step ") and c.endswith("-s5") for c in captions)

    ada = Client(demo_server, auth=("ada", PASSWORD), verbose=False)
    worse = next(c for c in job.checkpoints if c.palette_drop)
    refused, _ = ada.predict(job_id, worse.step, False, api_name="/publish_checkpoint")
    base, lora = worse.palette_drop
    assert f"palette {base:.2f} → {lora:.2f} with this LoRA" in refused and "publish anyway" in refused
    assert not any(a.name == "ember-worse" for a in services.brands.get_brand(SYSTEM, "ember").adapters)
    published, confirm = ada.predict(job_id, worse.step, True, api_name="/publish_checkpoint")
    assert f"Published step {worse.step} as version 1 of ember/ember-worse" in published and confirm is False
    adapter = next(a for a in services.brands.get_brand(SYSTEM, "ember").adapters if a.name == "ember-worse")
    assert [v.number for v in adapter.versions] == [1] and adapter.versions[0].id > 1  # not the global id
