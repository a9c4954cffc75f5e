"""Export a studio LoRA (diffusers format) with the key names kohya sd-scripts, A1111 and ComfyUI use.

=========  ============================================================================================
family     kohya names (``lora_down`` / ``lora_up`` / ``alpha`` per module)
=========  ============================================================================================
sd1, sd2   ``lora_unet_<diffusers module path, dots as underscores>`` (sd-scripts' SD1 UNet uses
           diffusers' module names)
sdxl       ``lora_unet_input_blocks_<n>_1_…`` / ``middle_block_1_…`` / ``output_blocks_<n>_1_…``: the
           original (SGM) UNet's block numbering, as sd-scripts' SDXL trainer writes it
=========  ============================================================================================

The studio folds ``alpha / rank`` into ``lora_up``, so each module's ``alpha`` is written equal to its rank
(a scale of 1). Metadata names the network module, the base model version (``ss_base_model_version``) and
the rank, so A1111 and the kohya tools know the family.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from studio.errors import ValidationError
from studio.storage import atomic_write_bytes

#: sd-scripts' ``ss_base_model_version`` per studio family
BASE_MODEL_VERSIONS = {"sd1": "sd_v1", "sd2": "sd_v2", "sdxl": "sdxl_base_v1-0"}
KOHYA_FAMILIES = tuple(BASE_MODEL_VERSIONS)
_PAIR = re.compile(r"^(?P<module>.+)\.(?P<part>lora_A|lora_B|lora\.down|lora\.up)\.weight$")


def read_diffusers_lora(lora_path: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{module path: (down, up)}`` of a diffusers-format LoRA file (keys ``unet.…`` / ``transformer.…``)."""
    from safetensors.torch import load_file

    from studio.storage import validate_safetensors

    validate_safetensors(lora_path)
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in load_file(str(lora_path)).items():
        match = _PAIR.match(key)
        if match is None:
            continue
        side = "down" if match["part"] in ("lora_A", "lora.down") else "up"
        parts.setdefault(match["module"], {})[side] = tensor
    if not parts:
        raise ValidationError(str(lora_path), "not a diffusers-format LoRA (no lora_A/lora_B keys)")
    broken = sorted(m for m, p in parts.items() if set(p) != {"down", "up"})
    if broken:
        raise ValidationError(str(lora_path), f"LoRA module {broken[0]} lacks its down or up matrix")
    return {module: (p["down"], p["up"]) for module, p in parts.items()}


def sgm_unet_path(path: str, layers_per_block: int) -> str:
    """A diffusers SDXL UNet attention module path → the original (SGM) UNet's path.

    ``down_blocks.i.attentions.j`` is ``input_blocks.(1 + i·(L+1) + j).1``, ``mid_block.attentions.0`` is
    ``middle_block.1`` and ``up_blocks.i.attentions.j`` is ``output_blocks.(i·(L+1) + j).1``, with
    L = ``layers_per_block``; the transformer inside keeps its names.
    """
    step = layers_per_block + 1
    match = re.match(r"^down_blocks\.(\d+)\.attentions\.(\d+)\.(.+)$", path)
    if match:
        return f"input_blocks.{1 + int(match[1]) * step + int(match[2])}.1.{match[3]}"
    match = re.match(r"^mid_block\.attentions\.0\.(.+)$", path)
    if match:
        return f"middle_block.1.{match[1]}"
    match = re.match(r"^up_blocks\.(\d+)\.attentions\.(\d+)\.(.+)$", path)
    if match:
        return f"output_blocks.{int(match[1]) * step + int(match[2])}.1.{match[3]}"
    raise ValidationError("lora", f"kohya export of SDXL LoRAs covers attention layers, not {path}")


def kohya_state_dict(
    modules: Mapping[str, tuple[torch.Tensor, torch.Tensor]], family: str, unet_config: Mapping[str, Any]
) -> dict[str, torch.Tensor]:
    """The kohya tensors (``lora_down``, ``lora_up``, ``alpha`` = rank) for a diffusers LoRA of ``family``."""
    if family not in KOHYA_FAMILIES:
        raise ValidationError(
            "family", f"kohya export supports {', '.join(KOHYA_FAMILIES)} LoRAs so far, not {family}"
        )
    out: dict[str, torch.Tensor] = {}
    for module, (down, up) in modules.items():
        component, _, path = module.partition(".")
        if component != "unet":
            raise ValidationError("lora", f"kohya export covers UNet layers, not {module}")
        if family == "sdxl":
            path = sgm_unet_path(path, int(unet_config.get("layers_per_block", 2)))
        name = "lora_unet_" + path.replace(".", "_")
        out[f"{name}.lora_down.weight"] = down.contiguous()
        out[f"{name}.lora_up.weight"] = up.contiguous()
        out[f"{name}.alpha"] = torch.tensor(float(down.shape[0]))
    return out


def export_kohya(lora_path: Path, out_path: Path, base_model: str) -> Path:
    """Write ``lora_path`` (diffusers format, trained on ``base_model``) as a kohya file at ``out_path``."""
    import json

    from safetensors.torch import save

    from studio.engine.models import resolve_model

    model = resolve_model(base_model)
    unet_file = model.path / "unet" / "config.json"
    unet_config = json.loads(unet_file.read_text(encoding="utf-8")) if unet_file.is_file() else {}
    modules = read_diffusers_lora(Path(lora_path))
    tensors = kohya_state_dict(modules, model.family, unet_config)
    ranks = sorted({int(down.shape[0]) for down, _ in modules.values()})
    metadata = {
        "ss_network_module": "networks.lora",
        "ss_base_model_version": BASE_MODEL_VERSIONS[model.family],
        "ss_network_dim": str(ranks[-1]),
        "ss_network_alpha": str(ranks[-1]),
        "ss_output_name": Path(out_path).stem,
    }
    atomic_write_bytes(Path(out_path), save(tensors, metadata=metadata))
    return Path(out_path)
