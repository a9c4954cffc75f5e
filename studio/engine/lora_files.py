"""LoRA files from other tools: their format, the model family they were made for, whether they fit.

Formats the studio takes in:

* ``diffusers`` — keys ``unet.…`` / ``transformer.…`` / ``text_encoder[_2].…`` with ``lora_A``/``lora_B`` or
  ``lora.down``/``lora.up`` (what ``save_lora_weights`` writes and the studio trains);
* ``kohya`` — ``lora_unet_…`` / ``lora_te[12]_…`` with ``lora_down``/``lora_up``/``alpha`` (sd-scripts, A1111,
  Civitai, ComfyUI); kept as is, diffusers' converter reads it;
* ``peft`` — a peft ``adapter_model.safetensors`` of the denoiser: ``[base_model.model.]<layer>.lora_A/B``
  with no component prefix; :func:`peft_to_diffusers` adds the ``unet.``/``transformer.`` prefix.

:func:`check_fits` reads only safetensors headers (the LoRA's and the model's weight files), so a file can be
checked against a brand's model without loading the model. It refuses, naming the reason, a file made for
another family (from its metadata or its key names) and a file whose layers the model lacks or whose matrix
sizes differ from the model's layers.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.errors import ValidationError
from studio.storage.safetensors_check import MAX_HEADER_BYTES

_DOWN = (".lora_down.weight", ".lora_A.weight", ".lora.down.weight", ".lora_linear_layer.down.weight")
_UP = (".lora_up.weight", ".lora_B.weight", ".lora.up.weight", ".lora_linear_layer.up.weight")
_COMPONENTS = ("unet", "transformer", "text_encoder", "text_encoder_2")
_KOHYA_PREFIXES = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_", "lora_te3_")
#: kohya key prefixes that only one family's files use
_KOHYA_FAMILY_HINTS = (
    ("lora_unet_double_blocks_", "flux"),
    ("lora_unet_single_blocks_", "flux"),
    ("lora_unet_joint_blocks_", "sd3"),
    ("lora_unet_input_blocks_", "sdxl"),
    ("lora_unet_output_blocks_", "sdxl"),
    ("lora_unet_middle_block_", "sdxl"),
    ("lora_te1_", "sdxl"),
    ("lora_te2_", "sdxl"),
    ("lora_unet_down_blocks_", "sd1"),
    ("lora_unet_up_blocks_", "sd1"),
    ("lora_unet_mid_block_", "sd1"),
    ("lora_te_", "sd1"),
)
_DIFFUSERS_FAMILY_HINTS = (
    ("transformer.single_transformer_blocks.", "flux"),
    ("unet.", "sd1"),
    ("transformer.", "mmdit"),
)
_FAMILY_NAMES = {"sd1": "SD 1.x", "sd2": "SD 2.x", "sdxl": "SDXL", "sd3": "SD3", "flux": "FLUX"}


@dataclass(frozen=True)
class LoraHeader:
    """A LoRA file's header: tensor shapes by key, metadata, and the format its keys are in."""

    path: Path
    shapes: dict[str, tuple[int, ...]]
    metadata: dict[str, str]
    format: str


def read_header(path: str | Path, label: str | None = None) -> dict[str, Any]:
    """The JSON header of a safetensors file (tensor entries and ``__metadata__``)."""
    file = Path(path)
    name = label or file.name
    try:
        with file.open("rb") as handle:
            length = struct.unpack("<Q", handle.read(8))[0]
            if not 0 < length <= min(MAX_HEADER_BYTES, file.stat().st_size - 8):  # not a made-up length
                raise ValidationError(name, f"not a safetensors file (invalid header length {length})")
            header = json.loads(handle.read(length))
    except (OSError, struct.error, ValueError) as exc:
        raise ValidationError(name, f"not a readable safetensors file ({exc})") from None
    if not isinstance(header, dict):
        raise ValidationError(name, "not a readable safetensors file (the header is not a table)")
    return header


def lora_format(keys: list[str] | tuple[str, ...] | set[str], label: str = "LoRA file") -> str:
    """``diffusers``, ``kohya`` or ``peft`` from a file's tensor names; a ValidationError when none fits."""
    pairs = [k for k in keys if k.endswith(_DOWN + _UP)]
    if not pairs:
        raise ValidationError(
            label, "contains no LoRA weights (no lora_down/lora_up or lora_A/lora_B tensors)"
        )
    if all(k.startswith(_KOHYA_PREFIXES) for k in pairs):
        return "kohya"
    if all(k.split(".", 1)[0] in _COMPONENTS for k in pairs):
        return "diffusers"
    if all(".lora_A." in k or ".lora_B." in k for k in pairs):
        return "peft"
    odd = next(
        k for k in pairs if not k.startswith(_KOHYA_PREFIXES) and k.split(".", 1)[0] not in _COMPONENTS
    )
    raise ValidationError(label, f"mixes LoRA key styles; {odd!r} is neither diffusers, kohya nor peft")


def read_lora_header(path: str | Path, label: str | None = None) -> LoraHeader:
    """Shapes, metadata and format of a LoRA file, from its header alone."""
    header = read_header(path, label)
    metadata = header.pop("__metadata__", None) or {}
    try:
        shapes = {key: tuple(int(n) for n in entry["shape"]) for key, entry in header.items()}
    except (KeyError, TypeError, ValueError):
        raise ValidationError(
            label or Path(path).name, "not a readable safetensors file (bad tensor entry)"
        ) from None
    fmt = lora_format(list(shapes), label or Path(path).name)
    return LoraHeader(Path(path), shapes, {str(k): str(v) for k, v in metadata.items()}, fmt)


def family_from_metadata(metadata: Mapping[str, str]) -> str | None:
    """The family sd-scripts' ``ss_base_model_version`` or modelspec's architecture names, if any."""
    version = metadata.get("ss_base_model_version", "").lower()
    arch = metadata.get("modelspec.architecture", "").lower()
    for text, table in (
        (version, (("sdxl", "sdxl"), ("sd3", "sd3"), ("flux", "flux"), ("sd_v2", "sd2"), ("sd_v1", "sd1"))),
        (
            arch,
            (("xl", "sdxl"), ("stable-diffusion-3", "sd3"), ("flux", "flux"), ("-v2", "sd2"), ("-v1", "sd1")),
        ),
    ):
        for needle, family in table:
            if text and needle in text:
                return family
    return None


def family_from_keys(lora: LoraHeader) -> str | None:
    """The family a file's key names point to (sd1 stands for SD 1.x and 2.x; None when they do not say)."""
    keys = list(lora.shapes)
    hints = _KOHYA_FAMILY_HINTS if lora.format == "kohya" else _DIFFUSERS_FAMILY_HINTS
    for prefix, family in hints:
        if any(k.startswith(prefix) for k in keys):
            if (
                family == "sd1"
                and lora.format != "kohya"
                and any(k.startswith("text_encoder_2.") for k in keys)
            ):
                return "sdxl"
            return family
    return None


def check_fits(lora: LoraHeader, model_dir: str | Path, family: str, model_label: str) -> None:
    """Refuse (ValidationError naming the reason) a LoRA that does not fit the model at ``model_dir``.

    Checks, in order: the family the file's metadata names, the family its key names point to, then each
    layer the file changes: the model must have it, with the input and output sizes of the LoRA's matrices.
    Kohya layers the studio cannot name in diffusers terms (SDXL and MMDiT layers outside attention) are left
    to diffusers' converter.
    """
    label = lora.path.name
    said = family_from_metadata(lora.metadata)
    if said is not None and said != family and {said, family} != {"sd1", "sd2"}:
        raise ValidationError(
            label,
            f"made for {_FAMILY_NAMES.get(said, said)} (metadata), but the brand's model {model_label} is "
            f"{_FAMILY_NAMES.get(family, family)}",
        )
    hinted = family_from_keys(lora)
    group = {"sd2": "sd1"}.get(family, family)
    if hinted is not None and hinted != group and not (hinted == "mmdit" and family in ("sd3", "flux")):
        example = next(k for k in lora.shapes if k.endswith(_DOWN))
        made_for = "SD3 or FLUX" if hinted == "mmdit" else _FAMILY_NAMES.get(hinted, hinted)
        raise ValidationError(
            label,
            f"made for {made_for} (its layer names, e.g. {example.rsplit('.', 2)[0]}), but the brand's model "
            f"{model_label} is {_FAMILY_NAMES.get(family, family)}",
        )
    layers = model_layers(model_dir, family, kohya=lora.format == "kohya")
    for key, shape in sorted(lora.shapes.items()):
        _check_key(label, key, shape, lora.format, family, layers, model_label)


def _check_key(
    label: str,
    key: str,
    shape: tuple[int, ...],
    fmt: str,
    family: str,
    layers: Mapping[str, tuple[int, int]],
    model_label: str,
) -> None:
    down = next((s for s in _DOWN if key.endswith(s)), None)
    up = next((s for s in _UP if key.endswith(s)), None)
    suffix = down or up
    if suffix is None or len(shape) < 2:
        return  # alpha values, magnitude vectors, ...
    layer = key[: -len(suffix)]
    if fmt == "peft":
        layer = f"{denoiser_component(family)}.{layer.removeprefix('base_model.model.')}"
    sizes = layers.get(layer)
    if sizes is None:
        if fmt == "kohya" and (family in ("sdxl", "sd3", "flux")):
            return  # a layer only diffusers' converter names (see check_fits)
        raise ValidationError(label, f"does not fit the brand's model {model_label}: it has no layer {layer}")
    in_features, out_features = sizes
    expected, actual = (in_features, shape[1]) if down else (out_features, shape[0])
    if expected != actual:
        side = "input" if down else "output"
        raise ValidationError(
            label,
            f"does not fit the brand's model {model_label}: layer {layer} has {expected} {side} features, "
            f"the LoRA has {actual}",
        )


def denoiser_component(family: str) -> str:
    return "transformer" if family in ("sd3", "flux") else "unet"


def component_shapes(model_dir: str | Path, component: str) -> dict[str, tuple[int, ...]]:
    """Weight shapes of one component of a diffusers folder, read from its safetensors headers."""
    shapes: dict[str, tuple[int, ...]] = {}
    for file in sorted((Path(model_dir) / component).glob("*.safetensors")):
        header = read_header(file)
        header.pop("__metadata__", None)
        shapes.update({key: tuple(entry["shape"]) for key, entry in header.items()})
    return shapes


def model_layers(model_dir: str | Path, family: str, *, kohya: bool) -> dict[str, tuple[int, int]]:
    """``{layer name: (input features, output features)}`` of a model's weight layers, named as diffusers
    (``unet.<path>``) or, with ``kohya``, as sd-scripts names them (``lora_unet_…``, ``lora_te…``)."""
    from studio.engine.lora_export import kohya_layer_name

    denoiser = denoiser_component(family)
    layers: dict[str, tuple[int, int]] = {}
    fused: dict[str, dict[int, tuple[int, int]]] = {}
    config = _denoiser_config(model_dir, denoiser)
    for component in (denoiser, "text_encoder", "text_encoder_2"):
        for key, shape in component_shapes(model_dir, component).items():
            if not key.endswith(".weight") or len(shape) < 2:
                continue
            path = key[: -len(".weight")]
            sizes = (int(shape[1]), int(shape[0]))
            if not kohya:
                layers[f"{component}.{path}"] = sizes
                continue
            named = kohya_layer_name(component, path, family, config)
            if named is None:
                continue
            name, part = named
            if part is None:
                layers[name] = sizes
            else:
                fused.setdefault(name, {})[part] = sizes
    for name, parts in fused.items():
        layers[name] = (parts[min(parts)][0], sum(out for _, out in parts.values()))
    return layers


def _denoiser_config(model_dir: str | Path, denoiser: str) -> dict[str, Any]:
    file = Path(model_dir) / denoiser / "config.json"
    try:
        return json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
    except (OSError, json.JSONDecodeError):
        return {}


def peft_to_diffusers(state: Mapping[str, Any], family: str) -> dict[str, Any]:
    """A peft denoiser adapter's tensors with diffusers' names (``unet.<layer>.lora_A.weight``)."""
    prefix = denoiser_component(family)
    return {f"{prefix}.{key.removeprefix('base_model.model.')}": value for key, value in state.items()}
