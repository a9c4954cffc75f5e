"""`studio generate`, `studio regenerate` and `studio models pull` (typer's CliRunner, real DB and pipeline).

The demo brands are synced with STUDIO_BASE_MODEL pointing at a tiny random SD folder (with a ControlNet).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import files_under
from typer.testing import CliRunner

from studio.cli import app

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, studio_home: Path, model_dir: Path) -> CliRunner:
    monkeypatch.setenv("STUDIO_HOME", str(studio_home))
    monkeypatch.setenv("STUDIO_BASE_MODEL", str(model_dir))
    runner = CliRunner()
    for args in (["brands", "sync", str(REPO / "brands")], ["users", "add", "mia", "--role", "marketer"]):
        assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, ["brands", "grant", "lagoon", "mia"]).exit_code == 0
    return runner


def test_generate_then_regenerate_gives_the_same_pixels(cli: CliRunner, studio_home: Path) -> None:
    args = ["generate", "--brand", "lagoon", "--prompt", "a red circle", "--steps", "2", "--seed", "5"]
    args += ["--template", "centered-circle", "--cfg", "4", "--user", "mia", "--json"]
    args += ["--lora", "lagoon-style=0"]  # the demo LoRA is trained for the embedded model, not this tiny one
    made = cli.invoke(app, args)
    assert made.exit_code == 0, made.output
    result = json.loads(made.stdout)
    image = result["images"][0]
    assert result["prompt"] == "a red circle, lagoonstyle"  # it fits the model's window: the brand's order
    assert Path(image["path"]).is_file() and image["seed"] == 5
    assert "step 2/2" in made.stderr

    again = cli.invoke(app, ["regenerate", str(image["id"]), "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["images"][0]["pixel_sha256"] == image["pixel_sha256"]

    plain = cli.invoke(
        app,
        [
            "generate",
            "--brand",
            "lagoon",
            "--prompt",
            "a cat",
            "--steps",
            "1",
            "--batch",
            "2",
            "--user",
            "mia",
            "--lora",
            "lagoon-style=0",
        ],
    )
    assert plain.exit_code == 0, plain.output
    assert plain.stdout.count("  image ") == 2


def test_bad_input_exits_1_with_a_clear_message_and_writes_no_image(
    cli: CliRunner, studio_home: Path
) -> None:
    before = files_under(studio_home / "images")
    cases = [
        (["--prompt", "a competitor logo"], "prompt: contains 'competitor'"),
        (["--prompt", "x", "--steps", "0"], "num_inference_steps"),
        (["--prompt", "x", "--lora", "lagoon-style"], "expected NAME=WEIGHT"),
        (["--prompt", "x", "--size", "poster"], "size: brand lagoon has no size 'poster'"),
        (["--prompt", "x", "--user", "nobody"], "unknown or disabled"),
    ]
    for extra, message in cases:
        user = [] if "--user" in extra else ["--user", "mia"]
        refused = cli.invoke(app, ["generate", "--brand", "lagoon", *user, *extra])
        assert refused.exit_code == 1 and message in refused.stderr, (extra, refused.output)
    assert cli.invoke(app, ["generate", "--brand", "ember", "--prompt", "x", "--user", "mia"]).exit_code == 1
    assert files_under(studio_home / "images") == before


def test_models_pull_fails_fast_offline(cli: CliRunner) -> None:
    pulled = cli.invoke(app, ["models", "pull", "someone/some-model"])
    assert pulled.exit_code == 1 and "offline" in pulled.stderr
