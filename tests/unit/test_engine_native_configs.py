"""native_resolution from the configs of full-size model folders (no weights): 512 for SD 1.5, 1024 for
SDXL, SD3 and FLUX.1; clear errors naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from studio.engine.models import native_resolution
from studio.errors import ModelError

VAE_8X = {"block_out_channels": [128, 256, 512, 512]}


def _folder(root: Path, denoiser: str, config: dict[str, Any], vae: dict[str, Any] | None = None) -> Path:
    for name, data in ((denoiser, config), ("vae", VAE_8X if vae is None else vae)):
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "config.json").write_text(json.dumps(data))
    return root


@pytest.mark.parametrize(
    ("denoiser", "config", "expected"),
    [
        ("unet", {"_class_name": "UNet2DConditionModel", "sample_size": 64}, 512),  # SD 1.5
        ("unet", {"_class_name": "UNet2DConditionModel", "sample_size": 96}, 768),  # SD 2.x 768
        ("unet", {"_class_name": "UNet2DConditionModel", "sample_size": 128}, 1024),  # SDXL
        ("transformer", {"_class_name": "SD3Transformer2DModel", "sample_size": 128}, 1024),  # SD3
        ("transformer", {"_class_name": "FluxTransformer2DModel", "patch_size": 1}, 1024),  # FLUX.1
    ],
)
def test_full_size_configs(tmp_path: Path, denoiser: str, config: dict[str, Any], expected: int) -> None:
    assert native_resolution(_folder(tmp_path, denoiser, config)) == expected


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="vae/config.json"):
        native_resolution(tmp_path)
    _folder(tmp_path, "unet", {"sample_size": "big"})
    with pytest.raises(ModelError, match=r"unet/config.json: sample_size"):
        native_resolution(tmp_path)
    (tmp_path / "unet" / "config.json").unlink()
    with pytest.raises(ModelError, match="neither unet/config.json nor transformer/config.json"):
        native_resolution(tmp_path)
    with pytest.raises(ModelError, match="block_out_channels"):
        native_resolution(_folder(tmp_path / "other", "unet", {"sample_size": 64}, vae={}))
