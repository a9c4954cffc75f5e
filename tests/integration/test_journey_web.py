"""Issue 14's "Done when", in the browser's tabs, for an SDXL and a FLUX folder: the studio runs a tiny
random pipeline saved as a diffusers folder (``STUDIO_BASE_MODEL``), the demo brands follow it. On a real
Gradio server on 127.0.0.1 (built as ``app.py`` builds it), an admin builds a dataset and queues training
through the Training tab's endpoints, a worker runs the job, the admin follows it in the tab and publishes
the checkpoint, and a marketer picks the brand in the Generate tab, finds the new LoRA's slider (the demo
LoRA, made for the embedded model, disabled with the reason) and generates an image with it. Real SQLite, real
training and generation; nothing is mocked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_fixtures import family_dir, fast_cpu  # noqa: F401
from gradio_http import GradioSession, Outcome
from helpers import DEMO_BRANDS, training_images
from live_server import serve_ui

from studio.config import Settings
from studio.engine.recipe import read_recipe
from studio.services.views import SYSTEM, Actor
from studio.training.worker import Worker
from studio.ui.text import escape_markdown

pytestmark = pytest.mark.usefixtures("fast_cpu")
PASSWORD = "a-long-password-1"


@pytest.fixture
def studio(
    family: str,
    studio_home: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> Iterator[Any]:
    """Services over a fresh data folder whose studio model is the tiny ``family`` folder; the demo brands;
    ada (admin) and mia (marketer, member of lagoon)."""
    from argon2 import PasswordHasher, profiles

    from studio.services.container import build_services

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    model = family_dir(family, tmp_path_factory)
    settings = Settings.from_env(
        {"STUDIO_HOME": str(studio_home), "STUDIO_BASE_MODEL": str(model), "STUDIO_DEVICE": "cpu"}
    )
    services = build_services(settings, password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    services.brands.sync(SYSTEM, DEMO_BRANDS)
    services.users.add_user(SYSTEM, "ada", ["admin"], PASSWORD)
    services.users.add_user(SYSTEM, "mia", ["marketer"], PASSWORD)
    services.brands.grant(SYSTEM, "lagoon", "mia")
    try:
        yield services
    finally:
        services.close()


def _named(config: dict[str, Any], api_name: str) -> dict[str, Any]:
    return next(d for d in config["dependencies"] if d.get("api_name") == api_name)


def _outputs(config: dict[str, Any], dep: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    """An event's outputs by component label (a slider relabelled by an update under its new label)."""
    assert outcome.ok, outcome.error
    components = {c["id"]: c for c in config["components"]}
    found: dict[str, Any] = {}
    for cid, value in zip(dep["outputs"], outcome.data or [], strict=True):
        label = components[cid]["props"].get("label") or components[cid]["type"]
        if isinstance(value, dict) and value.get("__type__") == "update" and "label" in value:
            label = value["label"]
        found[label] = value
    return found


def _page_values(config: dict[str, Any], dep: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    """The values an event's updates leave in the page's components, by their labels in the page's config
    (what the browser sends back with the next event)."""
    components = {c["id"]: c for c in config["components"]}
    values = {}
    for cid, value in zip(dep["outputs"], outcome.data or [], strict=True):
        label = components[cid]["props"].get("label")
        update = isinstance(value, dict) and value.get("__type__") == "update"
        if label and update and "value" in value:
            values[label] = value["value"]
    return values


@pytest.mark.parametrize("family", ["sdxl", "flux"])
def test_web_train_publish_generate(family: str, studio: Any, tmp_path: Path) -> None:
    from gradio_client import Client, handle_file

    model = studio.settings.base_model
    with serve_ui(studio) as url:
        # the admin, in the Training tab: a dataset, images, captions, the check, a job from the expert panel
        ada = Client(url, auth=("ada", PASSWORD), verbose=False)
        dataset_id = ada.predict("lagoon", "orange", api_name="/create_dataset")["value"]
        files = [handle_file(str(p)) for p in training_images(tmp_path / "images")]
        _, note, _ = ada.predict(dataset_id, files, api_name="/add_images")
        assert "Added 5 image(s)" in note
        table = ada.predict(
            dataset_id, "template", "{filename}, {trigger}", "orangesty", "", api_name="/caption_all"
        )
        assert {row[2] for row in table["data"]} == {"orange square, orangesty"}
        report = ada.predict(dataset_id, "orangesty", "", api_name="/check_dataset")
        assert "ready to train" in report and f"`{model}`" in report
        job_id, _ = ada.predict(
            "lagoon", dataset_id, "orange-style", "style", "orangesty", "quick",
            True, 4, 4, 0.01, 2, 2, 32, 2, "off", "adamw", "none", api_name="/queue_training",
        )  # fmt: skip
        job_id = int(job_id)  # the Job field is a text box
        assert ada.predict(api_name="/training_jobs")["data"][0][:2] == [job_id, "queued"]

        worker = Worker(studio.settings)  # the worker `studio worker` (or the app) runs
        try:
            assert worker.run_once() == "succeeded"
        finally:
            worker.close()

        with GradioSession(url) as page:  # the tab's job view: progress, samples, the steps to publish
            assert page.login("ada", PASSWORD).status_code == 200
            config = page.config()
            show = next(d for d in config["dependencies"] if (d.get("api_name") or "").startswith("show_job"))
            job_view = _outputs(config, show, page.call(show["id"], [job_id]))
        assert "<b>succeeded</b>" in job_view["html"] and "step 2 of 2" in job_view["html"]
        assert "resolution 32, optimizer adamw, base none, gradient checkpointing off" in job_view["html"]
        samples = job_view["Checkpoint samples (fixed prompts and seeds)"]
        assert samples and all("step 2" in item["caption"] for item in samples)
        assert job_view["Checkpoint step to publish"]["choices"] == [["2", 2]]
        published, _ = ada.predict(job_id, 2, True, api_name="/publish_checkpoint")  # True: even if worse
        assert "it is now the active version" in published and "lagoon/orange-style" in published

        lagoon = studio.brands.get_brand(SYSTEM, "lagoon")
        version = next(a for a in lagoon.adapters if a.name == "orange-style").active_version
        assert version is not None and (version.family, version.base_model) == (family, model)

        with GradioSession(url) as mia:  # the marketer, in the Generate tab
            assert mia.login("mia", PASSWORD).status_code == 200
            config = mia.config()
            changed = mia.call_named("brand_changed", {"Brand": "lagoon"})  # the page does this at login
            form = _outputs(config, _named(config, "brand_changed"), changed)
            texts = [v.get("value", "") if isinstance(v, dict) else v for v in changed.data]
            shown = f"**Model:** <code>{escape_markdown(Path(model).name)}</code> ({family})"
            assert any(shown in str(text) for text in texts)  # the brand's notes: the model by its name
            assert str(model) not in str(texts)  # never by its server path (issue 16)
            new = form["LoRA orange-style (orangesty)"]
            assert (new["visible"], new["interactive"], new["value"]) == (True, True, 1.0)
            demo = form["LoRA lagoon-style (lagoonstyle) (disabled)"]
            assert demo["interactive"] is False and "made for sd1" in demo["info"]
            updates = [u for u in changed.data if isinstance(u, dict)]
            sliders = [u for u in updates if str(u.get("label", "")).startswith("LoRA")]
            labels = [u["label"] for u in sliders]  # the four LoRA sliders, in order
            slider = f"LoRA {labels.index('LoRA orange-style (orangesty)') + 1}"
            page = _page_values(config, _named(config, "brand_changed"), changed)  # what the page now holds
            outcome = mia.call_named(
                "generate",
                {**page, "Brand": "lagoon", "Prompt": "a red circle", "Steps": 2, "Seed": "5", slider: 0.8},
            )
            assert outcome.ok, outcome.error
            gallery, _, details = outcome.data
            link = gallery[0]["image"]["url"]  # the image's link (no server path), served to mia
            served = mia.http.get(link[link.index("/studio/files/") :])
            assert served.status_code == 200
    image_id = details["generations"][0]["images"][0]["id"]
    path = tmp_path / "served.png"
    path.write_bytes(served.content)
    recipe = read_recipe(path)
    assert (recipe.family, recipe.base_model) == (family, model)
    assert [(entry.name, entry.weight, entry.version_id) for entry in recipe.loras] == [
        ("orange-style", 0.8, str(version.id))
    ]
    assert studio.generation.get_image(Actor.user("mia"), image_id).pixel_sha256
