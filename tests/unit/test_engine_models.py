"""Model references: families from model_index.json, pickle refusal, hub cache and pull offline."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from studio.engine import models
from studio.engine.models import (
    check_safetensors_only,
    detect_family,
    folder_hash,
    pull_model,
    resolve_model,
)
from studio.errors import ModelError, NotFoundError

CLASSES = {
    "StableDiffusionPipeline": "sd1",
    "StableDiffusionXLPipeline": "sdxl",
    "StableDiffusion3Pipeline": "sd3",
    "FluxPipeline": "flux",
}


def _folder(root: Path, class_name: str, cross_attention_dim: int = 768) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "model_index.json").write_text(
        json.dumps({"_class_name": class_name, "unet": ["diffusers", "UNet2DConditionModel"]})
    )
    (root / "unet").mkdir(exist_ok=True)
    (root / "unet" / "config.json").write_text(json.dumps({"cross_attention_dim": cross_attention_dim}))
    (root / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"x")
    return root


@pytest.mark.parametrize(("class_name", "family"), sorted(CLASSES.items()))
def test_family_from_model_index(tmp_path: Path, class_name: str, family: str) -> None:
    assert detect_family(_folder(tmp_path / "m", class_name)) == family


def test_sd2_is_told_apart_by_cross_attention_width(tmp_path: Path) -> None:
    assert detect_family(_folder(tmp_path / "m", "StableDiffusionPipeline", 1024)) == "sd2"


def test_unsupported_or_missing_index(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="KandinskyPipeline is not supported"):
        detect_family(_folder(tmp_path / "k", "KandinskyPipeline"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="model_index.json is missing"):
        detect_family(tmp_path / "empty")


def test_pickle_weights_refused(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "m", "StableDiffusionPipeline")
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    (folder / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(ModelError, match=r"unet/diffusion_pytorch_model.bin: pickle weights are refused"):
        check_safetensors_only(folder)
    with pytest.raises(ModelError, match="pickle"):
        resolve_model(str(folder))
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"pickle")
    with pytest.raises(ModelError, match="model.ckpt: pickle weights are refused"):
        resolve_model(str(ckpt))


def test_unknown_references(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no such folder"):
        resolve_model(str(tmp_path / "nope" / "deeper"))
    with pytest.raises(ModelError, match="empty"):
        resolve_model("  ")


def test_hub_id_outside_the_cache_says_how_to_pull(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NotFoundError, match="studio models pull acme/not-there"):
        resolve_model("acme/not-there", cache_dir=tmp_path)


def test_pull_fails_fast_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(ModelError, match="offline"):
        pull_model("acme/some-model", cache_dir=tmp_path)
    assert time.monotonic() - start < 2
    with pytest.raises(ModelError, match="not a Hugging Face repo id"):
        pull_model("../etc", cache_dir=tmp_path)


def test_pull_patterns_are_safetensors_configs_and_tokenizers() -> None:
    assert "*.safetensors" in models.PULL_PATTERNS
    assert not any(p.endswith((".bin", ".ckpt", ".pt", ".pth")) for p in models.PULL_PATTERNS)


def test_folder_hash_tracks_content_and_ignores_side_folders(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "m", "StableDiffusionPipeline")
    first = folder_hash(folder)
    (folder / "controlnet").mkdir()
    (folder / "controlnet" / "config.json").write_text("{}")
    assert folder_hash(folder) == first
    (folder / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"y")
    assert folder_hash(folder) != first


def test_embedded_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(NotFoundError, match="studio.nosuchmodel"):
        resolve_model("embedded:nosuchmodel")
    toyworld = pytest.importorskip("studio.toyworld")
    if (Path(toyworld.MODEL_DIR) / "model_index.json").is_file():
        assert resolve_model("embedded:toyworld").path == Path(toyworld.MODEL_DIR)
    else:
        with pytest.raises(NotFoundError, match="weights are missing"):
            resolve_model("embedded:toyworld")


def test_hub_id_resolves_from_the_local_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "cache" / "models--acme--tiny-sd"
    _folder(repo / "snapshots" / commit, "StableDiffusionXLPipeline")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    resolved = resolve_model("acme/tiny-sd", cache_dir=tmp_path / "cache")
    assert (resolved.family, resolved.revision) == ("sdxl", commit)
    assert resolved.path == repo / "snapshots" / commit
