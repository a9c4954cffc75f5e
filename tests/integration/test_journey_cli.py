"""Issue 14's "Done when", from the command line, for an SDXL and a FLUX folder: a newcomer points
``STUDIO_BASE_MODEL`` at a local diffusers folder (a tiny random pipeline saved from config), syncs the demo
brands, builds a dataset, queues training with expert flags, runs a worker once, publishes, and generates
with the new LoRA. Every command is the real ``studio`` CLI (typer's CliRunner, in this process) over a real
SQLite file; nothing is mocked. The PNG's recipe names the LoRA version and the model family."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from engine_fixtures import family_dir, fast_cpu  # noqa: F401
from helpers import DEMO_BRANDS, training_images
from PIL import Image
from typer.testing import CliRunner

from studio.cli import app
from studio.engine.recipe import read_recipe

pytestmark = pytest.mark.usefixtures("fast_cpu")
#: the native side of each tiny folder (×2 VAE): SDXL's UNet sample size 16, FLUX's default 128 latents
NATIVE = {"sdxl": 32, "flux": 256}


@pytest.mark.parametrize("family", ["sdxl", "flux"])
def test_cli_train_publish_generate(
    family: str,
    studio_home: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = family_dir(family, tmp_path_factory)
    monkeypatch.setenv("STUDIO_HOME", str(studio_home))
    monkeypatch.setenv("STUDIO_BASE_MODEL", str(model))
    monkeypatch.setenv("STUDIO_DEVICE", "cpu")
    runner = CliRunner()

    def cli(*args: str) -> str:
        result = runner.invoke(app, list(args))
        assert result.exit_code == 0, f"studio {' '.join(args)}:\n{result.output}"
        return result.output

    cli("brands", "sync", str(DEMO_BRANDS))
    assert f"{model} (default" in cli("brands", "show", "lagoon")  # the brand follows STUDIO_BASE_MODEL
    assert "dataset 1 created" in cli("datasets", "create", "lagoon", "orange")
    files = [str(p) for p in training_images(tmp_path / "images")]
    assert "added 5 image(s)" in cli("datasets", "add", "1", *files)
    captions = cli(
        "datasets", "caption", "1", "--template", "{filename}, {trigger}", "--trigger", "orangesty"
    )
    assert "orange square, orangesty" in captions
    checked = cli("datasets", "check", "1", "--trigger", "orangesty")
    native = NATIVE[family]  # read from the folder: SDXL's UNet sample size, FLUX's pipeline default
    assert f"bucket plan near {native}×{native} px" in checked and "ready to train" in checked, checked
    assert ("upscaled" in checked) == (native > 32)

    queued = cli(
        "train", "--brand", "lagoon", "--adapter", "orange-style", "--dataset", "1", "--trigger", "orangesty",
        "--preset", "quick", "--steps", "2", "--rank", "4", "--batch-size", "2", "--resolution", "32",
        "--learning-rate", "0.01", "--no-gradient-checkpointing", "--optimizer", "adamw",
        "--quantize-base", "none",
    )  # fmt: skip
    assert re.search(r"queued job 1: 2 steps, rank 4", queued), queued
    cli("worker", "--once")
    shown = cli("jobs", "show", "1")
    assert "#1 succeeded" in shown and "step 2:" in shown, shown
    job = json.loads(cli("jobs", "show", "1", "--json"))
    samples = [Path(p) for p in job["checkpoints"][-1]["sample_paths"]]
    assert samples and all(p.is_file() for p in samples)  # the checkpoint keeps its sample images
    published = cli("publish", "1", "--force")  # a 2-step LoRA on a random model may lower the palette score
    assert "as version 1 " in published and "lagoon/orange-style (now active)" in published, published
    version = re.search(r"\(id (\d+)\)", published).group(1)  # type: ignore[union-attr]
    shown = cli("brands", "show", "lagoon")
    assert "lora: orange-style [style] weight 1, active" in shown and f"(made for {family})" in shown, shown
    assert "lora: lagoon-style [style] weight 0.8, active" in shown and "(made for sd1)" in shown

    result = runner.invoke(
        app, ["users", "add", "mia", "--role", "marketer", "--password-stdin"], input="pw-1234567890\n"
    )
    assert result.exit_code == 0, result.output
    cli("brands", "grant", "lagoon", "mia")
    cli("brands", "custom-sizes", "lagoon", "on")  # 32x32 is none of lagoon's presets: an admin allows it
    out = cli(
        "generate", "--brand", "lagoon", "--prompt", "a red circle", "--lora", "orange-style=0.8",
        "--width", "32", "--height", "32", "--steps", "2", "--seed", "5", "--user", "mia", "--json",
    )  # fmt: skip
    path = Path(re.search(r'"path": "([^"]+\.png)"', out).group(1))  # type: ignore[union-attr]
    recipe = read_recipe(path)
    assert recipe.family == family and recipe.base_model == str(model)
    (lora,) = [entry for entry in recipe.loras if entry.name == "orange-style"]
    assert (lora.weight, lora.version_id) == (0.8, version)
    assert [entry.name for entry in recipe.loras] == ["orange-style"]  # the demo LoRA (sd1) is left out
    with Image.open(path) as image:
        assert image.format == "PNG" and image.size == (32, 32)
