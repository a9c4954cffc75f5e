"""`studio edit` (typer's CliRunner, a real SQLite file, the demo brands on the embedded model): each kind on
a gallery image, a file for a brand, `studio regenerate` of an edit, short errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from engine_fixtures import fast_cpu  # noqa: F401
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from studio.cli import app

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, studio_home: Path, fast_cpu: None) -> CliRunner:  # noqa: F811
    monkeypatch.setenv("STUDIO_HOME", str(studio_home))
    runner = CliRunner()
    for args in (["brands", "sync", str(REPO / "brands")], ["users", "add", "mia", "--role", "marketer"]):
        assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, ["brands", "grant", "lagoon", "mia"]).exit_code == 0
    return runner


def _json(cli: CliRunner, args: list[str]) -> dict:
    done = cli.invoke(app, args)
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


def test_edit_every_kind_and_regenerate_from_the_cli(cli: CliRunner, tmp_path: Path) -> None:
    made = _json(
        cli,
        ["generate", "--brand", "lagoon", "--prompt", "a red circle", "--steps", "4", "--seed", "5"]
        + ["--lora", "lagoon-style=0", "--user", "mia", "--json"],
    )["images"][0]
    mask = tmp_path / "mask.png"
    picture = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(picture).rectangle((16, 16, 47, 47), fill=255)
    picture.save(mask)
    base = ["edit", str(made["id"]), "--user", "mia", "--seed", "2", "--json"]
    for extra, size in (
        (["--kind", "img2img", "--strength", "0.5"], [64, 64]),
        (["--kind", "inpaint", "--mask", str(mask), "--prompt", "a blue circle"], [64, 64]),
        (["--kind", "expand", "--size", "banner 16:9", "--anchor", "left"], [112, 64]),
        (["--kind", "upscale", "--scale", "2"], [128, 128]),
    ):
        edit = _json(cli, base + extra)
        assert edit["parent_image_id"] == made["id"] and edit["kind"] == extra[1]
        assert [edit["image"]["width"], edit["image"]["height"]] == size
        assert edit["image"]["review_status"] == "pending"
    again = _json(cli, ["regenerate", str(edit["image"]["id"]), "--json"])
    assert again["images"][0]["pixel_sha256"] == edit["image"]["pixel_sha256"]

    from_file = cli.invoke(
        app,
        [
            "edit",
            made["path"],
            "--kind",
            "img2img",
            "--brand",
            "lagoon",
            "--prompt",
            "a red circle",
            "--user",
            "mia",
        ],
    )
    assert from_file.exit_code == 0, from_file.output
    assert "(img2img, 64x64)" in from_file.stdout and "pending" in from_file.stdout


def test_edit_errors_are_one_short_line(cli: CliRunner, tmp_path: Path) -> None:
    for args, message in (
        (["edit", "999", "--kind", "img2img"], "error: image 999 not found"),
        (["edit", "nothing.png", "--kind", "img2img"], "error: image: nothing.png: neither an image id"),
        (["edit", "1", "--kind", "sharpen"], "error: kind: 'sharpen' is not an edit"),
    ):
        done = cli.invoke(app, args)
        assert done.exit_code == 1 and message in done.stderr, done.output
