"""The dataset check's aspect-ratio bucket plan, on a real SQLite file: the native side is read from the
brand's base model (the embedded 64-px model, an SDXL-shaped folder at 1024 px), mixed shapes get several
buckets, a model that cannot be read is said plainly; ``studio datasets check`` prints the plan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import DEMO_BRANDS
from PIL import Image
from sqlalchemy import update
from typer.testing import CliRunner

from studio.db.models import Brand
from studio.services.views import SYSTEM


def _upload(services: Any, tmp_path: Path, sizes: list[tuple[int, int]]) -> int:
    """A lagoon dataset holding one image of each size, captioned with the trigger word."""
    services.brands.sync(SYSTEM, DEMO_BRANDS)
    view = services.datasets.create_dataset(SYSTEM, "lagoon", "mixed shapes")
    files = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"teal_{i}_{size[0]}x{size[1]}.png"
        Image.new("RGB", size, (0, 128, 100 + i)).save(path)
        files.append(path)
    services.datasets.add_images(SYSTEM, view.id, files)
    services.datasets.caption_all(SYSTEM, view.id, template="teal, {trigger}", adapter="lagoon-style")
    return view.id


def _pin(services: Any, model: str) -> None:
    with services.sessions.begin() as session:
        session.execute(update(Brand).where(Brand.slug == "lagoon").values(base_model=model))


def _sdxl_shaped(folder: Path) -> Path:
    """An SDXL pipeline folder with configs only (no weights): enough to read its native side."""
    index = {"_class_name": "StableDiffusionXLPipeline", "unet": ["diffusers", "UNet2DConditionModel"]}
    index["vae"] = ["diffusers", "AutoencoderKL"]
    for name, config in {
        "": index,
        "unet": {
            "_class_name": "UNet2DConditionModel",
            "sample_size": 128,
            "cross_attention_dim": 2048,
            "down_block_types": ["DownBlock2D"] * 3,
        },
        "vae": {"_class_name": "AutoencoderKL", "block_out_channels": [128, 256, 512, 512]},
    }.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        (folder / name / ("model_index.json" if not name else "config.json")).write_text(json.dumps(config))
    return folder


def test_mixed_shapes_on_the_embedded_model_get_several_buckets(services: Any, tmp_path: Path) -> None:
    dataset = _upload(services, tmp_path, [(96, 64), (112, 63), (64, 96), (64, 64), (128, 128)])
    _pin(services, "embedded:toyworld")
    check = services.datasets.check_dataset(SYSTEM, dataset, adapter="lagoon-style")
    assert (check.model, check.native) == ("embedded:toyworld", 64)
    assert [(b.width, b.height, b.count) for b in check.buckets] == [(80, 48, 2), (64, 64, 2), (48, 80, 1)]
    wide = check.buckets[0]
    assert wide.label == "landscape 5:3"
    assert wide.images == ("teal_0_96x64.png", "teal_1_112x63.png")
    assert 0 < wide.max_crop_share < 0.2 and wide.line.startswith("80×48: 2 images (landscape")
    assert check.buckets[1].max_crop_share == 0.0 and check.buckets[1].line.endswith("no crop")
    assert any(a.startswith("Mixed shapes: 3 aspect-ratio buckets near 64×64 px") for a in check.advice)
    assert check.ready


def test_the_native_side_is_read_from_the_brands_model(services: Any, tmp_path: Path) -> None:
    dataset = _upload(
        services, tmp_path, [(1500, 1000), (1000, 1500), (1920, 1080), (1024, 1024), (800, 800)]
    )
    _pin(services, str(_sdxl_shaped(tmp_path / "sdxl")))
    check = services.datasets.check_dataset(SYSTEM, dataset, adapter="lagoon-style")
    assert check.native == 1024
    assert {(b.width, b.height) for b in check.buckets} == {
        (1216, 832),
        (832, 1216),
        (1344, 768),
        (1024, 1024),
    }
    assert all(b.width * b.height <= 1024 * 1024 for b in check.buckets)
    assert check.small_images == ("teal_4_800x800.png",)  # upscaled to its 1024² bucket
    assert any("smaller than their bucket" in a for a in check.advice)


def test_a_model_that_cannot_be_read_gives_no_plan_and_says_why(services: Any, tmp_path: Path) -> None:
    dataset = _upload(services, tmp_path, [(96, 64), (64, 64)])
    _pin(services, str(tmp_path / "no-such-model"))
    check = services.datasets.check_dataset(SYSTEM, dataset, adapter="lagoon-style")
    assert (check.native, check.buckets) == (0, ())
    assert any(a.startswith("No bucket plan:") and "no-such-model" in a for a in check.advice)


def test_the_cli_prints_the_plan(
    services: Any, tmp_path: Path, studio_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio.cli import app

    dataset = _upload(services, tmp_path, [(96, 64), (64, 96), (64, 64)])
    _pin(services, "embedded:toyworld")
    monkeypatch.setenv("STUDIO_HOME", str(studio_home))
    result = CliRunner().invoke(app, ["datasets", "check", str(dataset), "--adapter", "lagoon-style"])
    assert result.exit_code == 0, result.output
    assert "bucket plan near 64×64 px (embedded:toyworld):" in result.output
    for line in (
        "  80×48: 1 image (landscape",
        "  48×80: 1 image (portrait",
        "  64×64: 1 image (square 1:1)",
    ):
        assert line in result.output
    as_json = CliRunner().invoke(app, ["datasets", "check", str(dataset), "--json"])
    data = json.loads(as_json.output)
    assert data["native"] == 64 and [b["count"] for b in data["buckets"]] == [1, 1, 1]
