"""native_resolution and size_multiple from the configs of full-size model folders (no weights): 512 for
SD 1.5, 1024 for SDXL, SD3 and FLUX.1; clear errors naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from studio.engine.models import native_resolution, size_multiple
from studio.errors import ModelError

VAE_8X = {"block_out_channels": [128, 256, 512, 512]}


def _folder(root: Path, denoiser: str, config: dict[str, Any], vae: dict[str, Any] | None = None) -> Path:
    for name, data in ((denoiser, config), ("vae", VAE_8X if vae is None else vae)):
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "config.json").write_text(json.dumps(data))
    return root


UNET_4 = {
    "_class_name": "UNet2DConditionModel",
    "down_block_types": ["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
}
UNET_3 = {
    "_class_name": "UNet2DConditionModel",
    "down_block_types": ["DownBlock2D"] + ["CrossAttnDownBlock2D"] * 2,
}


@pytest.mark.parametrize(
    ("denoiser", "config", "native", "multiple"),
    [
        ("unet", {**UNET_4, "sample_size": 64}, 512, 64),  # SD 1.5
        ("unet", {**UNET_4, "sample_size": 96}, 768, 64),  # SD 2.x 768
        ("unet", {**UNET_3, "sample_size": 128}, 1024, 32),  # SDXL
        (
            "transformer",
            {"_class_name": "SD3Transformer2DModel", "sample_size": 128, "patch_size": 2},
            1024,
            16,
        ),
        ("transformer", {"_class_name": "FluxTransformer2DModel", "patch_size": 1}, 1024, 16),  # FLUX.1
    ],
)
def test_full_size_configs(
    tmp_path: Path, denoiser: str, config: dict[str, Any], native: int, multiple: int
) -> None:
    folder = _folder(tmp_path, denoiser, config)
    assert (native_resolution(folder), size_multiple(folder)) == (native, multiple)


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="vae/config.json"):
        native_resolution(tmp_path)
    _folder(tmp_path, "unet", {"sample_size": "big"})
    with pytest.raises(ModelError, match=r"unet/config.json: sample_size"):
        native_resolution(tmp_path)
    (tmp_path / "unet" / "config.json").unlink()
    with pytest.raises(ModelError, match="neither unet/config.json nor transformer/config.json"):
        native_resolution(tmp_path)
    _folder(tmp_path / "flat", "unet", {"sample_size": 64})
    with pytest.raises(ModelError, match=r"unet/config.json: down_block_types"):
        size_multiple(tmp_path / "flat")
    with pytest.raises(ModelError, match="block_out_channels"):
        native_resolution(_folder(tmp_path / "other", "unet", {"sample_size": 64}, vae={}))
