"""The kohya file the studio hands out: A1111 / ComfyUI / Civitai metadata, the export, A1111's hash of it.

The metadata is what those tools read: sd-scripts' ``ss_*`` keys (network module, dim, alpha, base model
version, output name = the adapter's name, trigger words as ``ss_tag_frequency``) and Stability's modelspec
keys as sd-scripts' ``library/sai_model_spec.py`` writes them for a LoRA (``modelspec.sai_model_spec``,
``architecture`` ``<arch>/lora``, ``implementation``, ``title``, ``resolution``, ``date``, ``hash_sha256``,
``trigger_phrase``, ``prediction_type``).

:func:`a1111_lora_hash` is the hash A1111 shows for the exported file (it hashes only the tensor data, so
the metadata does not change it); the engine writes it into each PNG's ``parameters``. A file already in
kohya's names keeps its tensor data byte for byte, so its hash stays the one Civitai knows.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from studio.engine.lora_export import BASE_MODEL_VERSIONS, kohya_state_dict, pairs_of, read_diffusers_lora
from studio.errors import ValidationError
from studio.storage import atomic_write_bytes

#: modelspec architecture per studio family (sd-scripts' ``ARCH_*``), a LoRA's gets ``/lora``
MODELSPEC_ARCHITECTURES = {
    "sd1": "stable-diffusion-v1", "sd2": "stable-diffusion-v2-512", "sdxl": "stable-diffusion-xl-v1-base",
    "sd3": "stable-diffusion-3", "flux": "flux-1",
}  # fmt: skip
_SGM = "https://github.com/Stability-AI/generative-models"
_DEFAULT_RESOLUTIONS = {"sd1": 512, "sd2": 512, "sdxl": 1024, "sd3": 1024, "flux": 1024}


def denoiser_config(model_dir: Path, family: str) -> dict[str, Any]:
    """The UNet's or transformer's ``config.json`` of a diffusers folder ({} when absent)."""
    denoiser = "transformer" if family in ("sd3", "flux") else "unet"
    config_file = Path(model_dir) / denoiser / "config.json"
    return json.loads(config_file.read_text(encoding="utf-8")) if config_file.is_file() else {}


def kohya_metadata(
    tensors: Mapping[str, torch.Tensor],
    family: str,
    *,
    name: str,
    base_model: str,
    trigger_words: Iterable[str] = (),
    resolution: int | None = None,
    prediction_type: str | None = None,
    model_config: Mapping[str, Any] | None = None,
    tensor_hash: str = "",
    date: str | None = None,
) -> dict[str, str]:
    """sd-scripts' ``ss_*`` and modelspec metadata of a kohya LoRA (all values are strings);
    ``tensor_hash`` is the sha256 of the file's tensor data (modelspec's ``hash_sha256``)."""
    ranks = sorted({int(t.shape[0]) for k, t in tensors.items() if k.endswith(".lora_down.weight")})
    alphas = sorted({float(t) for k, t in tensors.items() if k.endswith(".alpha")})
    dim = ranks[-1] if ranks else 0
    alpha = alphas[-1] if alphas else float(dim)
    words = [w for w in (str(w).strip() for w in trigger_words) if w]
    size = resolution or _DEFAULT_RESOLUTIONS.get(family, 512)
    architecture = MODELSPEC_ARCHITECTURES.get(family, family)
    if family == "flux" and model_config is not None:
        architecture = "flux-1-dev" if model_config.get("guidance_embeds") else "flux-1-schnell"
    if family == "sd2" and prediction_type == "v_prediction":
        architecture = "stable-diffusion-v2-768-v"
    implementation = {"flux": "https://github.com/black-forest-labs/flux", "sdxl": _SGM}.get(
        family, "diffusers"
    )
    metadata = {
        "ss_network_module": "networks.lora",
        "ss_network_dim": str(dim),
        "ss_network_alpha": f"{alpha:g}",
        "ss_base_model_version": BASE_MODEL_VERSIONS[family],
        "ss_v2": str(family == "sd2"),
        "ss_output_name": name,
        "ss_sd_model_name": base_model,
        "ss_resolution": f"({size}, {size})",
        "ss_tag_frequency": json.dumps({name: {word: 1 for word in words}}, ensure_ascii=False),
        "modelspec.sai_model_spec": "1.0.1",
        "modelspec.architecture": f"{architecture}/lora",
        "modelspec.implementation": implementation,
        "modelspec.title": name,
        "modelspec.resolution": f"{size}x{size}",
        "modelspec.date": date or dt.datetime.now(dt.UTC).date().isoformat(),
    }
    if tensor_hash:
        metadata["modelspec.hash_sha256"] = "0x" + tensor_hash
    if words:
        metadata["modelspec.trigger_phrase"] = ", ".join(words)
        metadata["modelspec.usage_hint"] = "Use " + ", ".join(words)
    if prediction_type:
        metadata["modelspec.prediction_type"] = "v" if prediction_type == "v_prediction" else "epsilon"
    return metadata


def kohya_tensors(lora_path: Path, family: str, config: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """A LoRA file's tensors in kohya's names: converted from diffusers' names, or as they are when the file
    already uses kohya's."""
    from safetensors.torch import load_file

    from studio.engine.lora_files import read_lora_header

    header = read_lora_header(lora_path)
    if header.format == "kohya":
        return dict(load_file(str(lora_path)))
    if header.format == "peft":
        from studio.engine.lora_files import denoiser_component

        prefix = denoiser_component(family)
        state = {
            f"{prefix}.{k.removeprefix('base_model.model.')}": v for k, v in load_file(str(lora_path)).items()
        }
        modules = pairs_of(state, str(lora_path))
    else:
        modules = read_diffusers_lora(lora_path)
    return kohya_state_dict(modules, family, config)


def a1111_lora_hash(
    lora_path: str | Path, family: str, model_dir: str | Path, sha256: str | None = None
) -> str:
    """A1111's short hash (12 hex digits, "AutoV3") of this LoRA's kohya export, the file A1111 loads.

    Cached per (file content, family, model): the first call converts the file in memory. ``sha256`` is the
    file's, when the caller has checked it already (else the file is hashed to key the cache).
    """
    from studio.engine.a1111 import sha256_file

    path = Path(lora_path)
    return _a1111_lora_hash(str(path), sha256 or sha256_file(path), family, str(model_dir))


@functools.lru_cache(maxsize=256)
def _a1111_lora_hash(path: str, content_sha256: str, family: str, model_dir: str) -> str:
    from safetensors.torch import save

    from studio.engine.a1111 import autov3, autov3_of_bytes
    from studio.engine.lora_files import read_lora_header

    try:
        if read_lora_header(path).format == "kohya":
            return autov3(path)[:12]
        tensors = kohya_tensors(Path(path), family, denoiser_config(Path(model_dir), family))
    except ValidationError:
        return autov3(path)[:12]  # no kohya form (a layer sd-scripts does not name): the file itself
    return autov3_of_bytes(save(tensors))[:12]


def with_metadata(path: Path, metadata: Mapping[str, str]) -> bytes:
    """A safetensors file's bytes with its ``__metadata__`` replaced and its tensor data byte for byte as it
    was (so A1111's hash of it does not change)."""
    data = Path(path).read_bytes()
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    header["__metadata__"] = dict(metadata)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + length :]


def export_kohya(
    lora_path: Path,
    out_path: Path,
    base_model: str,
    *,
    name: str | None = None,
    trigger_words: Iterable[str] = (),
    date: str | None = None,
) -> Path:
    """Write ``lora_path`` (made for ``base_model``) as a kohya file with A1111/Civitai metadata at
    ``out_path``; ``name`` (default: the file's stem) is its ``ss_output_name``, the name A1111 shows;
    ``date`` (ISO 8601, default today) its ``modelspec.date``.

    A file already in kohya's names keeps its tensor data byte for byte (only the metadata changes; keys the
    studio does not write are kept).
    """
    from safetensors.torch import load_file, save

    from studio.engine.a1111 import autov3_of_bytes
    from studio.engine.lora_files import read_lora_header
    from studio.engine.models import resolve_model

    model = resolve_model(base_model)
    config = denoiser_config(model.path, model.family)
    header = read_lora_header(lora_path)
    passthrough = header.format == "kohya"
    tensors = (
        load_file(str(lora_path)) if passthrough else kohya_tensors(Path(lora_path), model.family, config)
    )
    scheduler = model.path / "scheduler" / "scheduler_config.json"
    prediction = None
    if scheduler.is_file():
        prediction = json.loads(scheduler.read_text(encoding="utf-8")).get("prediction_type")
    sample = config.get("sample_size")
    resolution = int(sample) * 8 if isinstance(sample, int) and model.family not in ("sd3", "flux") else None
    body = with_metadata(Path(lora_path), {}) if passthrough else save(tensors)
    metadata = kohya_metadata(
        tensors,
        model.family,
        name=name or Path(out_path).stem,
        base_model=base_model,
        trigger_words=trigger_words,
        resolution=resolution,
        prediction_type=prediction,
        model_config=config,
        tensor_hash=autov3_of_bytes(body),
        date=date,
    )
    if passthrough:
        data = with_metadata(Path(lora_path), {**header.metadata, **metadata})
    else:
        data = save(tensors, metadata=metadata)
    atomic_write_bytes(Path(out_path), data)
    return Path(out_path)
