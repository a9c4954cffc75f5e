"""The A1111 ``parameters`` text (infotext) of a recipe, and the file hashes A1111 writes into it.

The text follows AUTOMATIC1111's ``create_infotext`` (``modules/processing.py``) field for field, so that its
``parse_generation_parameters`` (``modules/infotext_utils.py``) reads it back::

    <prompt as sent> <lora:name:weight> ...
    Negative prompt: <negative prompt>                (left out when empty, as A1111 does)
    Steps: 25, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6, Seed: 42, Size: 64x64,
    Model hash: 1a2b3c4d5e, Model: <name>, RNG: CPU, ControlNet 0: "Module: none, ...",
    Lora hashes: "name: 0123456789ab", Version: brand-studio <version>

* Values are quoted with JSON only when they hold ``,``, ``:`` or a line break (A1111's ``quote``).
* ``Sampler`` is always a name A1111 1.9+ knows; the schedule goes in ``Schedule type`` (A1111 reads a plain
  ``DPM++ 2M`` with no schedule as Karras, so the studio's DPM++ 2M says ``Uniform``).
* ``RNG: CPU``: the studio draws its starting noise with a CPU generator.
* ``Lora hashes`` uses A1111's short LoRA hash ("AutoV3", sd-scripts' ``addnet_hash_safetensors``): the sha256
  of the tensor data after the safetensors header, first 12 hex digits. The engine computes it for the file
  A1111 would load: the LoRA's kohya export (``studio loras export --format kohya``); see
  :func:`studio.engine.kohya_files.a1111_lora_hash`.
* ``Model hash`` is A1111's "AutoV2": the first 10 hex digits of the checkpoint file's sha256. A diffusers
  folder has no single checkpoint file, so the studio hashes its denoiser's weights, the file that decides
  what the model draws: ``unet/diffusion_pytorch_model.safetensors`` (SD1/2, SDXL) or
  ``transformer/diffusion_pytorch_model.safetensors`` (SD3, FLUX); sharded weights are hashed one after the
  other in file-name order. See :func:`model_hash`.
* An edit (image-to-image, inpainting, expand, upscale) writes what A1111's img2img writes:
  ``Denoising strength`` after ``Model``, and after ``RNG`` ``Mask blur`` (inpainting and expand) or the "SD
  upscale" script's ``SD upscale overlap`` and ``SD upscale upscaler`` (a tiled upscale).
* ControlNet units use the sd-webui-controlnet extension's ``ControlNetUnit.serialize`` fields, in its order.
  The studio feeds each unit the template's ready control map, which is that extension's module ``none``.

This module imports neither torch nor diffusers.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from studio.engine.models import model_name

if TYPE_CHECKING:  # pragma: no cover
    from studio.engine.recipe import ControlEntry, EditEntry, Recipe

#: studio sampler → (A1111 sampler name, A1111 schedule type), for noise-prediction models
SCHEDULES: dict[str, tuple[str, str]] = {
    "Euler": ("Euler", "Uniform"),
    "Euler a": ("Euler a", "Uniform"),
    "DPM++ 2M": ("DPM++ 2M", "Uniform"),
    "DPM++ 2M Karras": ("DPM++ 2M", "Karras"),
    "DDIM": ("DDIM", "Automatic"),
    "UniPC": ("UniPC", "Automatic"),
    "LCM": ("LCM", "Automatic"),
}
#: flow-matching families: the studio's Euler there is the flow-matching Euler with the model's own sigmas
FLOW_FAMILIES = ("sd3", "flux")
FLOW_SCHEDULE = ("Euler", "Simple")
_CHUNK = 1 << 20
_model_hashes: dict[str, str] = {}
_model_hash_lock = threading.Lock()


def quote(text: object) -> str:
    """A1111's ``quote``: JSON-quoted only when the value holds ``,``, ``:`` or a line break."""
    value = str(text)
    if "," not in value and "\n" not in value and ":" not in value:
        return value
    return json.dumps(value, ensure_ascii=False)


def number(value: float) -> str:
    """A number as A1111 writes it: whole numbers without a fraction (``7``), others as short as exact."""
    return f"{float(value):g}"


def sampler_and_schedule(sampler: str, family: str | None) -> tuple[str, str]:
    """The (Sampler, Schedule type) pair A1111 uses for the studio's ``sampler`` on a ``family`` model."""
    if family in FLOW_FAMILIES:
        return FLOW_SCHEDULE
    return SCHEDULES.get(sampler, (sampler, "Automatic"))


def lora_tags(recipe: Recipe) -> str:
    """``<lora:name:weight>`` for each LoRA, space-separated (A1111's extra-network prompt syntax)."""
    return " ".join(f"<lora:{entry.name}:{number(entry.weight)}>" for entry in recipe.loras)


def controlnet_unit(unit: ControlEntry) -> str:
    """One unit as the sd-webui-controlnet extension serializes it (fields and order of its infotext)."""
    name = unit.controlnet.rstrip("/").rsplit("/", 1)[-1]
    model = name.replace(":", "-").replace(",", " ")  # the extension refuses ',' and ':' inside values
    fields = (
        ("Module", "none"),
        ("Model", model),
        ("Weight", str(float(unit.scale))),
        ("Resize Mode", "Crop and Resize"),
        ("Processor Res", "-1"),
        ("Threshold A", "-1"),
        ("Threshold B", "-1"),
        ("Guidance Start", str(float(unit.start))),
        ("Guidance End", str(float(unit.end))),
        ("Pixel Perfect", "False"),
        ("Control Mode", "Balanced"),
    )
    return ", ".join(f"{key}: {value}" for key, value in fields)


#: The Guidance fields written after ``RNG``, by the names A1111 extensions read (sd-webui-cfg-rescale's
#: ``CFG Rescale φ``) or, for methods A1111 has no extension for, plain names. Only fields that differ from
#: plain CFG are written, so a plain-CFG image's line is exactly A1111's.
GUIDANCE_KEYS: tuple[tuple[str, str], ...] = (
    ("method", "Guidance"),
    ("rescale", "CFG Rescale φ"),
    ("apg_eta", "APG eta"),
    ("apg_momentum", "APG momentum"),
    ("apg_norm_threshold", "APG norm threshold"),
    ("fdg_low_scale", "FDG low scale"),
    ("optimized_scale", "CFG-Zero* scale"),
    ("zero_init_steps", "CFG-Zero* zero init steps"),
    ("threshold_percentile", "Dynamic threshold percentile"),
    ("start", "Guidance start"),
    ("stop", "Guidance stop"),
)


def guidance_fields(guidance: dict[str, object] | None) -> list[tuple[str, str]]:
    """The recipe's guidance as ``parameters`` fields: those that differ from plain CFG, in a fixed order."""
    if not guidance:
        return []
    from studio.engine.guidance_settings import Guidance

    plain = Guidance()
    fields = []
    for name, key in GUIDANCE_KEYS:
        value = guidance.get(name, getattr(plain, name))
        if value == getattr(plain, name):
            continue
        text = str(value) if isinstance(value, bool | str | int) else number(float(value))  # type: ignore[arg-type]
        fields.append((key, text))
    return fields


def edit_fields(edit: EditEntry) -> list[tuple[str, str]]:
    """What A1111 adds to ``extra_generation_params`` for an edit: ``Mask blur`` for inpainting (and
    outpainting, which A1111 does by inpainting), ``SD upscale overlap`` / ``SD upscale upscaler`` for a tiled
    upscale (its "SD upscale" script). ``Denoising strength`` has its own place, after ``Model``."""
    if edit.kind in ("inpaint", "expand") and edit.mask_blur is not None:
        return [("Mask blur", str(edit.mask_blur))]
    if edit.kind == "upscale" and edit.tile_size:
        return [("SD upscale overlap", str(edit.tile_overlap or 0)), ("SD upscale upscaler", "Lanczos")]
    return []


def parameters_text(recipe: Recipe) -> str:
    """The A1111 ``parameters`` text for ``recipe`` (see the module docstring for each field)."""
    sampler, schedule = sampler_and_schedule(recipe.sampler, recipe.family)
    fields: list[tuple[str, str]] = [
        ("Steps", str(recipe.steps)),
        ("Sampler", sampler),
        ("Schedule type", schedule),
        ("CFG scale", number(recipe.guidance_scale)),
        ("Seed", str(recipe.seed)),
        ("Size", f"{recipe.width}x{recipe.height}"),
    ]
    if recipe.a1111_model_hash:
        fields.append(("Model hash", recipe.a1111_model_hash[:10]))
    fields.append(("Model", model_name(recipe.base_model)))
    edit = recipe.edit
    if edit is not None:
        fields.append(("Denoising strength", number(edit.strength)))
    fields.append(("RNG", "CPU"))
    fields += guidance_fields(recipe.guidance)
    if edit is not None:
        fields += edit_fields(edit)
    for index, unit in enumerate(recipe.controls):
        fields.append((f"ControlNet {index}", controlnet_unit(unit)))
    hashes = [
        f"{entry.name.replace(':', '').replace(',', '')}: {entry.a1111_hash[:12]}"
        for entry in recipe.loras
        if entry.a1111_hash
    ]
    if hashes:
        fields.append(("Lora hashes", ", ".join(hashes)))
    studio_version = recipe.versions.get("studio")
    if studio_version:
        fields.append(("Version", f"brand-studio {studio_version}"))
    prompt = recipe.prompt
    tags = lora_tags(recipe)
    if tags:
        prompt = f"{prompt} {tags}" if prompt else tags
    lines = [prompt]
    if recipe.negative_prompt:
        lines.append(f"Negative prompt: {recipe.negative_prompt}")
    lines.append(", ".join(f"{key}: {quote(value)}" for key, value in fields))
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------ hashes


def sha256_file(path: str | Path, offset: int = 0) -> str:
    """sha256 of a file's bytes from ``offset`` on, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        handle.seek(offset)
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def safetensors_data_offset(path: str | Path) -> int:
    """Where a safetensors file's tensor data starts: 8 bytes of header length, then the header."""
    with Path(path).open("rb") as handle:
        head = handle.read(8)
    if len(head) != 8:
        raise ValueError(f"{Path(path).name}: too short to be a safetensors file")
    return 8 + int.from_bytes(head, "little")


def autov3(path: str | Path) -> str:
    """A1111's LoRA hash (sd-scripts' ``addnet_hash_safetensors``): sha256 of the data after the header.

    Full hex digest; A1111 writes the first 12 digits. Metadata lives in the header, so it does not change it.
    """
    return sha256_file(path, safetensors_data_offset(path))


def autov3_of_bytes(data: bytes) -> str:
    """:func:`autov3` of a safetensors file held in memory."""
    start = 8 + int.from_bytes(data[:8], "little")
    return hashlib.sha256(memoryview(data)[start:]).hexdigest()


def denoiser_weight_files(model_dir: str | Path, family: str | None) -> list[Path]:
    """The denoiser's ``.safetensors`` files of a diffusers folder (UNet, or transformer for SD3/FLUX)."""
    component = "transformer" if family in FLOW_FAMILIES else "unet"
    folder = Path(model_dir) / component
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.safetensors") if p.is_file())


def model_hash(model_dir: str | Path, family: str | None) -> str | None:
    """A1111's "AutoV2" model hash (sha256 of the checkpoint file) for a diffusers folder: the sha256 of its
    denoiser's weight files one after the other (see the module docstring); None when it has none.

    Cached per (file, size, modification time): a multi-GB UNet is read once per process.
    """
    files = denoiser_weight_files(model_dir, family)
    if not files:
        return None
    return _hash_files(files)


def _hash_files(files: Iterable[Path]) -> str:
    paths = list(files)
    key_parts = [(str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths]
    key = json.dumps(key_parts)
    with _model_hash_lock:
        cached = _model_hashes.get(key)
    if cached is not None:
        return cached
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            for chunk in iter(lambda handle=handle: handle.read(_CHUNK), b""):
                digest.update(chunk)
    value = digest.hexdigest()
    with _model_hash_lock:
        _model_hashes[key] = value
    return value
