"""The training commands of the `studio` CLI (typer's CliRunner, real SQLite): datasets, train, jobs, publish;
bad input exits 1 with one clear line and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import DEMO_BRANDS, snapshot
from PIL import Image
from typer.testing import CliRunner

from studio.cli import app


@pytest.fixture
def cli(studio_home: Path, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    monkeypatch.setenv("STUDIO_HOME", str(studio_home))
    runner = CliRunner()

    def invoke(*args: str):  # noqa: ANN202
        return runner.invoke(app, list(args))

    assert invoke("brands", "sync", str(DEMO_BRANDS)).exit_code == 0
    return invoke


def test_datasets_train_jobs_publish(cli, tmp_path: Path, services) -> None:  # noqa: ANN001
    images = []
    for i in range(3):
        path = tmp_path / f"orange_square_{i}.png"
        Image.new("RGB", (32, 32), (245, 135, 25 + i)).save(path)
        images.append(str(path))
    created = cli("datasets", "create", "lagoon", "orange")
    assert created.exit_code == 0 and "dataset 1 created" in created.output
    added = cli("datasets", "add", "1", *images, images[0])
    assert added.exit_code == 0, added.output
    assert "added 3 image(s)" in added.output and "notice:" in added.output  # the duplicate is dropped
    captioned = cli(
        "datasets", "caption", "1", "--template", "{filename}, {trigger}", "--adapter", "lagoon-style"
    )
    assert "orange square, lagoonstyle" in captioned.output
    checked = cli("datasets", "check", "1", "--adapter", "lagoon-style")
    assert "3 image(s)" in checked.output and "ready to train" in checked.output

    before = snapshot(services)
    for bad, message in (
        (
            ("train", "--brand", "lagoon", "--adapter", "lagoon-style", "--dataset", "1", "--rank", "0"),
            "rank",
        ),
        (
            ("train", "--brand", "lagoon", "--adapter", "lagoon-style", "--dataset", "1", "--steps", "0"),
            "steps",
        ),
        (("train", "--brand", "lagoon", "--adapter", "lagoon-style", "--dataset", "9"), "not found"),
        (("datasets", "add", "1", str(tmp_path / "missing.png")), "missing.png"),
        (("publish", "1"), "not found"),
    ):
        result = cli(*bad)
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    assert snapshot(services) == before

    queued = cli(
        "train", "--brand", "lagoon", "--adapter", "lagoon-style", "--dataset", "1", "--preset", "quick"
    )
    assert queued.exit_code == 0 and "queued job 1: 100 steps, rank 4" in queued.output
    assert "queued" in cli("jobs", "list").output
    assert "#1 cancelled" in cli("jobs", "cancel", "1").output
    refused = cli("publish", "1")
    assert refused.exit_code == 1 and "no checkpoint" in refused.output
    assert "#1 queued" in cli("jobs", "resume", "1").output
