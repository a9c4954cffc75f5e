"""The expert training settings (gradient checkpointing, optimizer, quantized base, batch, resolution,
learning rate) reach every surface: the training service, ``studio train`` and the Training tab's expert
panel, each with help text. Bad values are refused with a ValidationError naming the field and queue nothing.
Real SQLite, a real local Gradio server; no torch needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from gradio_http import GradioSession
from helpers import DEMO_BRANDS, snapshot
from live_server import DEMO_PASSWORD as PASSWORD
from live_server import demo_server_fixture  # noqa: F401 (the demo_server fixture)
from PIL import Image
from typer.testing import CliRunner

from studio.cli import app
from studio.errors import ValidationError
from studio.services.views import SYSTEM

EXPERT = {
    "gradient_checkpointing": True,
    "optimizer": "adamw8bit",
    "quantize_base": "int8",
    "batch_size": 2,
    "resolution": 256,
    "learning_rate": 2e-4,
}


def _dataset(services: Any, tmp_path: Path) -> int:
    view = services.datasets.create_dataset(SYSTEM, "lagoon", "teal shapes")
    files = []
    for i in range(3):
        path = tmp_path / f"teal_{i}.png"
        Image.new("RGB", (32, 32), (0, 128, 100 + i)).save(path)
        files.append(path)
    services.datasets.add_images(SYSTEM, view.id, files)
    return view.id


@pytest.fixture
def dataset(services: Any, tmp_path: Path) -> int:
    services.brands.sync(SYSTEM, DEMO_BRANDS)
    return _dataset(services, tmp_path)


def test_the_service_queues_expert_settings_and_refuses_bad_ones(services: Any, dataset: int) -> None:
    job = services.training.queue_training(
        SYSTEM, "lagoon", "lagoon-style", dataset, preset="quick", **EXPERT
    )
    assert {key: job.config[key] for key in EXPERT} == EXPERT
    auto = services.training.queue_training(SYSTEM, "lagoon", "lagoon-style", dataset, preset="quick")
    assert (
        auto.config["gradient_checkpointing"],
        auto.config["optimizer"],
        auto.config["quantize_base"],
    ) == (
        None,
        "adamw",
        "none",
    )  # None: the worker decides from its GPU's memory

    before = snapshot(services)
    for field, bad in (
        ("optimizer", "sgd"),
        ("quantize_base", "nf4"),
        ("gradient_checkpointing", "yes"),
        ("batch_size", 0),
        ("resolution", 36),
        ("learning_rate", 5.0),
    ):
        with pytest.raises(ValidationError) as caught:
            services.training.queue_training(SYSTEM, "lagoon", "lagoon-style", dataset, **{field: bad})
        assert caught.value.field == field, caught.value
    with pytest.raises(ValidationError, match="unknown setting"):
        services.training.queue_training(SYSTEM, "lagoon", "lagoon-style", dataset, mixed_precisio=True)
    assert snapshot(services) == before


def test_studio_train_takes_the_expert_flags(
    services: Any, dataset: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_HOME", str(services.settings.home))
    runner = CliRunner()
    base = ("train", "--brand", "lagoon", "--adapter", "lagoon-style", "--dataset", str(dataset))

    monkeypatch.setenv("COLUMNS", "400")  # rich's help table on one line per option
    helped = runner.invoke(app, ["train", "--help"])
    flat = " ".join(helped.output.split())
    for flag in ("--batch-size", "--resolution", "--learning-rate", "--no-gradient-checkpointing",
                 "--optimizer", "--quantize-base"):  # fmt: skip
        assert flag in flat
    assert "needs bitsandbytes, GPU only" in flat and "FLUX on a 24 GB GPU" in flat

    before = snapshot(services)
    for flags, field in (
        (("--optimizer", "sgd"), "optimizer"),
        (("--quantize-base", "nf4"), "quantize_base"),
        (("--resolution", "36"), "resolution"),
        (("--batch-size", "0"), "batch_size"),
        (("--learning-rate", "5"), "learning_rate"),
    ):
        refused = runner.invoke(app, [*base, *flags])
        assert refused.exit_code == 1 and f"error: {field}:" in refused.output, refused.output
        assert "Traceback" not in refused.output
    assert snapshot(services) == before

    queued = runner.invoke(
        app,
        [*base, "--preset", "quick", "--batch-size", "2", "--resolution", "256", "--learning-rate", "0.0002",
         "--gradient-checkpointing", "--optimizer", "adamw8bit", "--quantize-base", "int8"],
    )  # fmt: skip
    assert queued.exit_code == 0, queued.output
    assert "batch 2, lr 0.0002, resolution 256, optimizer adamw8bit, base int8" in queued.output
    job = services.training.list_jobs(SYSTEM)[0]
    assert {key: job.config[key] for key in EXPERT} == EXPERT
    off = runner.invoke(app, [*base, "--no-gradient-checkpointing"])
    assert off.exit_code == 0, off.output
    assert services.training.list_jobs(SYSTEM)[0].config["gradient_checkpointing"] is False


def test_the_training_tab_expert_panel(services: Any, demo_server: str, tmp_path: Path) -> None:
    from gradio_client import Client

    dataset_id = _dataset(services, tmp_path)
    with GradioSession(demo_server) as page:
        assert page.login("ada", PASSWORD).status_code == 200
        components = page.config()["components"]
    panel = {c["props"].get("label"): c["props"] for c in components if c["props"].get("label")}
    assert panel["Optimizer"]["choices"] == [["adamw", "adamw"], ["adamw8bit", "adamw8bit"]]
    assert "needs bitsandbytes, GPU only" in panel["Optimizer"]["info"]
    assert (
        "int8: the frozen base in int8 (torchao) — FLUX on a 24 GB GPU"
        in panel["Quantize the frozen base"]["info"]
    )
    assert "less GPU memory" in panel["Gradient checkpointing"]["info"]
    assert panel["Gradient checkpointing"]["value"] == "auto"
    for label in ("Batch size", "Learning rate", "Resolution (0 = the model's own)"):
        assert panel[label]["info"], label

    ada = Client(demo_server, auth=("ada", PASSWORD), verbose=False)
    # brand, dataset, adapter, kind, trigger, preset, expert on, rank, alpha, lr, steps, batch, resolution,
    # checkpoint every, gradient checkpointing, optimizer, quantized base
    job_id, _ = ada.predict(
        "lagoon", dataset_id, "lagoon-style", "style", "", "quick",
        True, 4, 4, 0.0002, 5, 2, 256, 5, "on", "adamw8bit", "int8", api_name="/queue_training",
    )  # fmt: skip
    job = services.training.get_job(SYSTEM, int(job_id))
    assert {key: job.config[key] for key in EXPERT} == EXPERT
    job_id, _ = ada.predict(
        "lagoon", dataset_id, "lagoon-style", "style", "", "quick",
        True, 4, 4, 0.001, 5, 1, 0, 5, "auto", "adamw", "none", api_name="/queue_training",
    )  # fmt: skip
    job = services.training.get_job(SYSTEM, int(job_id))
    assert (job.config["gradient_checkpointing"], job.config["resolution"]) == (None, None)

    before = snapshot(services)
    _, refused = ada.predict(  # a warning line by the form (no component turns into an error)
        "lagoon", dataset_id, "lagoon-style", "style", "", "quick",
        True, 4, 4, 0.001, 5, 1, 36, 5, "off", "adamw", "none", api_name="/queue_training",
    )  # fmt: skip
    assert "resolution" in refused
    assert snapshot(services) == before
