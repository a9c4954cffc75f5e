"""What a base model accepts (size multiple, default size, samplers), read from its config files only.

No weights are loaded (the samplers a model offers are read through diffusers' scheduler classes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.engine import samplers as sampler_registry
from studio.engine.guidance_settings import Guidance
from studio.engine.models import ResolvedModel
from studio.errors import ModelError, ValidationError


@dataclass(frozen=True)
class ModelInfo:
    """What a base model accepts, read from its configs (no weights loaded)."""

    ref: str
    family: str
    revision: str | None
    content_hash: str | None
    size_multiple: int
    default_width: int
    default_height: int
    samplers: tuple[str, ...]
    default_sampler: str
    supports_negative_prompt: bool
    scheduler_config: dict[str, Any] = field(repr=False, default_factory=dict)
    #: the sampling guidance the model's build recommends (``guidance`` in the embedded model's
    #: ``toyworld.json``; None for other models): the studio's default where a brand sets none
    recommended_guidance: dict[str, Any] | None = None


def _config(path: Path, component: str, filename: str) -> dict[str, Any]:
    file = path / component / filename
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path.name}: cannot read {component}/{filename} ({exc})") from None


def recommended_guidance(path: Path) -> dict[str, Any] | None:
    """``guidance`` of the model folder's build facts (``toyworld.json``, written by the embedded model's
    build), checked (a ModelError names the file); None when there is none."""
    facts = path / "toyworld.json"
    if not facts.is_file():
        return None
    try:
        guidance = json.loads(facts.read_text(encoding="utf-8")).get("guidance")
        if guidance is not None:
            Guidance.from_dict(guidance)
    except (OSError, json.JSONDecodeError, AttributeError, ValidationError) as exc:
        raise ModelError(f"{path.name}: toyworld.json has no usable guidance ({exc})") from None
    return dict(guidance) if guidance else None


def read_model_info(model: ResolvedModel) -> ModelInfo:
    """Size multiple, default size and samplers of a resolved base model, from its config files."""
    vae = _config(model.path, "vae", "config.json")
    vae_scale = 2 ** (len(vae.get("block_out_channels", [0, 0, 0, 0])) - 1)
    scheduler = _config(model.path, "scheduler", "scheduler_config.json")
    if model.family in ("sd1", "sd2", "sdxl"):
        unet = _config(model.path, "unet", "config.json")
        multiple = vae_scale * 2 ** (len(unet.get("down_block_types", [0])) - 1)
        sample = unet.get("sample_size", 64)
    else:
        transformer = _config(model.path, "transformer", "config.json")
        patch = int(transformer.get("patch_size", 2))
        multiple = vae_scale * patch * (2 if model.family == "flux" else 1)
        sample = transformer.get("sample_size", 128) if model.family == "sd3" else 128
    sample = sample[0] if isinstance(sample, list | tuple) else sample
    default = max(multiple, int(sample) * vae_scale // multiple * multiple)
    return ModelInfo(
        ref=model.ref,
        family=model.family,
        revision=model.revision,
        content_hash=model.content_hash,
        size_multiple=multiple,
        default_width=default,
        default_height=default,
        samplers=tuple(sampler_registry.available_samplers(scheduler)),
        default_sampler=sampler_registry.default_sampler(scheduler),
        supports_negative_prompt=model.family != "flux",
        scheduler_config=scheduler,
        recommended_guidance=recommended_guidance(model.path),
    )
