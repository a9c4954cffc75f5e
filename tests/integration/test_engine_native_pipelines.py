"""native_resolution and size_multiple on saved tiny pipelines of each family and on the embedded model: the
size diffusers' own pipeline draws by default, and the same numbers as the engine's ``read_model_info`` (what
generation and the trainer use), read from the folder's configs without torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from engine_fixtures import flux_pipeline, save_pipeline, sd1_pipeline, sd3_pipeline, sdxl_pipeline

from studio.engine.model_info import read_model_info
from studio.engine.models import native_resolution, resolve_model, size_multiple


def _pipeline_default(pipe: Any) -> int:
    """The side the pipeline generates when no height/width is given."""
    side = getattr(pipe, "default_sample_size", None) or pipe.unet.config.sample_size
    return int(side) * int(pipe.vae_scale_factor)


@pytest.mark.parametrize(
    ("family", "build", "expected"),
    [
        ("sd1", sd1_pipeline, 16 * 2),  # UNet sample_size 16, ×2 VAE
        ("sdxl", sdxl_pipeline, 16 * 2),
        ("sd3", sd3_pipeline, 16 * 2),  # transformer sample_size 16
        ("flux", flux_pipeline, 128 * 2),  # no sample_size: FluxPipeline's default 128 latent px
    ],
)
def test_native_resolution_of_tiny_pipelines(family: str, build: Any, expected: int, tmp_path: Path) -> None:
    pipe = build()
    folder = save_pipeline(pipe, tmp_path / family)
    model = resolve_model(str(folder))
    assert model.family == family
    assert native_resolution(folder) == expected == _pipeline_default(pipe)
    info = read_model_info(model)
    assert (native_resolution(folder), size_multiple(folder)) == (info.default_width, info.size_multiple)


def test_native_resolution_of_the_embedded_model() -> None:
    model = resolve_model("embedded:toyworld")
    assert (native_resolution(model.path), size_multiple(model.path)) == (64, 16)
    info = read_model_info(model)
    assert (info.default_width, info.size_multiple) == (64, 16)
