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

The metadata is what A1111, ComfyUI and Civitai read: sd-scripts' ``ss_*`` keys (network module, dim,
alpha, base model version, output name = the adapter's name, trigger words as ``ss_tag_frequency``) and
Stability's modelspec keys as sd-scripts' ``library/sai_model_spec.py`` writes them for a LoRA.

:func:`a1111_lora_hash` is the hash A1111 shows for the exported file (it hashes only the tensor data, so
the metadata does not change it); the engine writes it into each PNG's ``parameters``.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from studio.errors import ValidationError
from studio.storage import atomic_write_bytes

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
        modules = _pairs(state, str(lora_path))
    else:
        modules = read_diffusers_lora(lora_path)
    return kohya_state_dict(modules, family, config)


def _pairs(state: Mapping[str, torch.Tensor], label: str) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in state.items():
        match = _PAIR.match(key)
        if match is not None:
            side = "down" if match["part"] in ("lora_A", "lora.down") else "up"
            parts.setdefault(match["module"], {})[side] = tensor
    broken = sorted(m for m, p in parts.items() if set(p) != {"down", "up"})
    if not parts or broken:
        raise ValidationError(label, "not a LoRA with a down and an up matrix per layer")
    return {module: (p["down"], p["up"]) for module, p in parts.items()}


def a1111_lora_hash(lora_path: str | Path, family: str, model_dir: str | Path) -> str:
    """A1111's short hash (12 hex digits, "AutoV3") of this LoRA's kohya export, the file A1111 loads.

    Cached per (file content, family, model): the first call converts the file in memory.
    """
    from studio.engine.a1111 import sha256_file

    path = Path(lora_path)
    return _a1111_lora_hash(str(path), sha256_file(path), family, str(model_dir))


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
