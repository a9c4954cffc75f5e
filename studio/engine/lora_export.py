"""Export a studio LoRA (diffusers format) with the key names kohya sd-scripts, A1111 and ComfyUI use.

=========  ============================================================================================
family     kohya names (``lora_down`` / ``lora_up`` / ``alpha`` per module)
=========  ============================================================================================
sd1, sd2   ``lora_unet_<diffusers module path, dots as underscores>`` (sd-scripts' SD1 UNet uses
           diffusers' module names)
sdxl       ``lora_unet_input_blocks_<n>_1_…`` / ``middle_block_1_…`` / ``output_blocks_<n>_1_…``: the
           original (SGM) UNet's block numbering, as sd-scripts' SDXL trainer writes it
sd3        ``lora_unet_joint_blocks_<i>_x_block_attn_qkv`` / ``…_attn_proj`` / ``…_context_block_attn_qkv``:
           the original MMDiT's fused q/k/v layers (sd-scripts' ``lora_sd3``)
flux       ``lora_unet_double_blocks_<i>_img_attn_qkv`` / ``…_txt_attn_qkv`` / ``…_img_attn_proj`` and
           ``lora_unet_single_blocks_<i>_linear1`` (q, k, v and the MLP input fused) / ``…_linear2``
           (sd-scripts' ``lora_flux``; diffusers reads them with its kohya FLUX converter)
=========  ============================================================================================

Where the original model fuses layers that diffusers keeps apart (q, k and v; FLUX's ``linear1``), the parts'
LoRAs are joined exactly: ``lora_down`` stacks each part's down matrix, ``lora_up`` is block-diagonal with one
block per part (a part that was not trained gets a zero block of the same rank), so the fused layer's update
is the parts' updates one above the other. The studio folds ``alpha / rank`` into ``lora_up``, so each
module's ``alpha`` is its rank (a scale of 1). Text-encoder layers are ``lora_te_…`` (SD1/2) and
``lora_te1_…`` / ``lora_te2_…`` (SDXL). A file that is already in kohya's names keeps its tensors as they are.

The file the studio hands out, with its metadata, and A1111's hash of it: :mod:`studio.engine.kohya_files`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from studio.errors import ValidationError

#: sd-scripts' ``ss_base_model_version`` per studio family
BASE_MODEL_VERSIONS = {
    "sd1": "sd_v1", "sd2": "sd_v2", "sdxl": "sdxl_base_v1-0", "sd3": "sd3", "flux": "flux1",
}  # fmt: skip
_PAIR = re.compile(r"^(?P<module>.+)\.(?P<part>lora_A|lora_B|lora\.down|lora\.up)\.weight$")


def read_diffusers_lora(lora_path: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{module path: (down, up)}`` of a diffusers-format LoRA file (keys ``unet.…`` / ``transformer.…``)."""
    from safetensors.torch import load_file

    from studio.storage import validate_safetensors

    validate_safetensors(lora_path)
    return pairs_of(load_file(str(lora_path)), str(lora_path))


def pairs_of(state: Mapping[str, torch.Tensor], label: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{module path: (down, up)}`` of tensors with diffusers' or peft's names (``lora_A``/``lora_B``,
    ``lora.down``/``lora.up``); a ValidationError naming ``label`` when there are none or one lacks a side."""
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        match = _PAIR.match(key)
        if match is None:
            continue
        side = "down" if match["part"] in ("lora_A", "lora.down") else "up"
        parts.setdefault(match["module"], {})[side] = tensor
    if not parts:
        raise ValidationError(label, "not a diffusers-format LoRA (no lora_A/lora_B keys)")
    broken = sorted(m for m, p in parts.items() if set(p) != {"down", "up"})
    if broken:
        raise ValidationError(label, f"LoRA module {broken[0]} lacks its down or up matrix")
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


#: diffusers layer (inside a block) → (sd-scripts layer, part of the fused layer or None), per MMDiT family
_SD3_JOINT = {
    "attn.to_q": ("x_block_attn_qkv", 0), "attn.to_k": ("x_block_attn_qkv", 1),
    "attn.to_v": ("x_block_attn_qkv", 2), "attn.to_out.0": ("x_block_attn_proj", None),
    "attn2.to_q": ("x_block_attn2_qkv", 0), "attn2.to_k": ("x_block_attn2_qkv", 1),
    "attn2.to_v": ("x_block_attn2_qkv", 2), "attn2.to_out.0": ("x_block_attn2_proj", None),
    "attn.add_q_proj": ("context_block_attn_qkv", 0), "attn.add_k_proj": ("context_block_attn_qkv", 1),
    "attn.add_v_proj": ("context_block_attn_qkv", 2), "attn.to_add_out": ("context_block_attn_proj", None),
}  # fmt: skip
_FLUX_DOUBLE = {
    "attn.to_q": ("img_attn_qkv", 0), "attn.to_k": ("img_attn_qkv", 1), "attn.to_v": ("img_attn_qkv", 2),
    "attn.to_out.0": ("img_attn_proj", None), "attn.add_q_proj": ("txt_attn_qkv", 0),
    "attn.add_k_proj": ("txt_attn_qkv", 1), "attn.add_v_proj": ("txt_attn_qkv", 2),
    "attn.to_add_out": ("txt_attn_proj", None), "ff.net.0.proj": ("img_mlp_0", None),
    "ff.net.2": ("img_mlp_2", None), "ff_context.net.0.proj": ("txt_mlp_0", None),
    "ff_context.net.2": ("txt_mlp_2", None),
}  # fmt: skip
_FLUX_SINGLE = {
    "attn.to_q": ("linear1", 0), "attn.to_k": ("linear1", 1), "attn.to_v": ("linear1", 2),
    "proj_mlp": ("linear1", 3), "proj_out": ("linear2", None),
}  # fmt: skip


def mmdit_kohya_name(path: str, family: str) -> tuple[str, int | None]:
    """A diffusers SD3/FLUX transformer layer → (sd-scripts module name, part index in a fused layer)."""
    patterns: list[tuple[str, str, Mapping[str, tuple[str, int | None]]]] = (
        [(r"^transformer_blocks\.(\d+)\.(.+)$", "joint_blocks", _SD3_JOINT)]
        if family == "sd3"
        else [
            (r"^transformer_blocks\.(\d+)\.(.+)$", "double_blocks", _FLUX_DOUBLE),
            (r"^single_transformer_blocks\.(\d+)\.(.+)$", "single_blocks", _FLUX_SINGLE),
        ]
    )
    for pattern, block, table in patterns:
        match = re.match(pattern, path)
        if match and match[2] in table:
            name, part = table[match[2]]
            return f"lora_unet_{block}_{match[1]}_{name}", part
    raise ValidationError("lora", f"kohya export of {family} LoRAs does not cover the layer {path}")


def fused_part_sizes(name: str, family: str, config: Mapping[str, Any]) -> list[int]:
    """Output sizes of the parts of a fused sd-scripts layer (q, k, v; FLUX ``linear1`` adds the MLP)."""
    inner = int(config.get("num_attention_heads", 0)) * int(config.get("attention_head_dim", 0))
    if inner <= 0:
        raise ValidationError("model", f"the {family} transformer config lacks its attention sizes")
    if name.endswith("_linear1"):
        return [inner, inner, inner, int(inner * float(config.get("mlp_ratio", 4.0)))]
    return [inner, inner, inner]


def fuse_parts(
    parts: Mapping[int, tuple[torch.Tensor, torch.Tensor]], sizes: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """One LoRA for a fused layer from its parts' LoRAs: stacked downs, block-diagonal ups (zero blocks for
    parts without a LoRA), all parts at the largest rank (smaller ones padded with zeros)."""
    rank = max(down.shape[0] for down, _ in parts.values())
    some_down = next(iter(parts.values()))[0]
    downs, ups = [], torch.zeros(sum(sizes), rank * len(sizes), dtype=some_down.dtype)
    for index, size in enumerate(sizes):
        down = torch.zeros(rank, some_down.shape[1], dtype=some_down.dtype)
        if index in parts:
            part_down, part_up = parts[index]
            if part_up.shape[0] != size:
                raise ValidationError("lora", f"part {index} has {part_up.shape[0]} outputs, expected {size}")
            down[: part_down.shape[0]] = part_down
            row = sum(sizes[:index])
            ups[row : row + size, index * rank : index * rank + part_down.shape[0]] = part_up
        downs.append(down)
    return torch.cat(downs), ups


def kohya_layer_name(
    component: str, path: str, family: str, config: Mapping[str, Any]
) -> tuple[str, int | None] | None:
    """sd-scripts' name for the layer ``component.path`` of a ``family`` model, with its part index in a
    fused layer (None when not fused); None when sd-scripts has no name for it that the studio knows."""
    try:
        if component in ("unet", "transformer"):
            if family in ("sd3", "flux"):
                return mmdit_kohya_name(path, family)
            if family == "sdxl":
                sgm = sgm_unet_path(path, int(config.get("layers_per_block", 2)))
                return "lora_unet_" + sgm.replace(".", "_"), None
            return "lora_unet_" + path.replace(".", "_"), None
    except ValidationError:
        return None
    prefixes = {
        ("text_encoder", "sd1"): "lora_te_", ("text_encoder", "sd2"): "lora_te_",
        ("text_encoder", "sdxl"): "lora_te1_", ("text_encoder_2", "sdxl"): "lora_te2_",
    }  # fmt: skip
    prefix = prefixes.get((component, family))
    return (prefix + path.replace(".", "_"), None) if prefix else None


def kohya_state_dict(
    modules: Mapping[str, tuple[torch.Tensor, torch.Tensor]], family: str, config: Mapping[str, Any]
) -> dict[str, torch.Tensor]:
    """The kohya tensors (``lora_down``, ``lora_up``, ``alpha`` = rank) for a diffusers LoRA of ``family``.

    ``config`` is the denoiser's config (UNet or transformer ``config.json``).
    """
    if family not in BASE_MODEL_VERSIONS:
        supported = ", ".join(BASE_MODEL_VERSIONS)
        raise ValidationError("family", f"kohya export supports {supported}, not {family}")
    expected = "transformer" if family in ("sd3", "flux") else "unet"
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    fused: dict[str, dict[int, tuple[torch.Tensor, torch.Tensor]]] = {}
    for module, (down, up) in modules.items():
        component, _, path = module.partition(".")
        if component == expected and family in ("sd3", "flux"):
            name, part = mmdit_kohya_name(path, family)  # raises, naming the layer, for an unknown one
        elif component == expected and family == "sdxl":
            name, part = (
                "lora_unet_" + sgm_unet_path(path, int(config.get("layers_per_block", 2))).replace(".", "_"),
                None,
            )
        else:
            named = kohya_layer_name(component, path, family, config)
            if named is None:
                raise ValidationError("lora", f"kohya export of {family} LoRAs does not cover {module}")
            name, part = named
        if part is not None:
            fused.setdefault(name, {})[part] = (down, up)
            continue
        pairs[name] = (down, up)
    for name, parts in fused.items():
        pairs[name] = fuse_parts(parts, fused_part_sizes(name, family, config))
    out: dict[str, torch.Tensor] = {}
    for name, (down, up) in sorted(pairs.items()):
        out[f"{name}.lora_down.weight"] = down.contiguous()
        out[f"{name}.lora_up.weight"] = up.contiguous()
        out[f"{name}.alpha"] = torch.tensor(float(down.shape[0]))
    return out
