"""The trainer's validated configuration and its presets (no torch here: services and the CLI use it).

A preset names rank, alpha, learning rate, steps, batch size and checkpoint interval; :func:`build_config`
applies a preset, then the admin's "expert" overrides, and validates every field with a clear error.
:func:`fit_to_memory` (run by the worker, which knows the device) lowers the batch and turns on gradient
checkpointing when the device has little memory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from studio.errors import ValidationError

KINDS = ("style", "subject")
OPTIMIZERS = ("adamw", "adamw8bit")
QUANTIZATIONS = ("none", "int8")

LIMITS: dict[str, tuple[float, float]] = {
    "rank": (1, 128),
    "alpha": (0.5, 256),
    "learning_rate": (1e-6, 1e-1),
    "steps": (1, 20_000),
    "batch_size": (1, 64),
    "resolution": (32, 2048),
    "checkpoint_every": (1, 20_000),
    "sample_steps": (1, 100),
    "caption_dropout": (0.0, 0.9),
}

#: Presets for an admin who does not want to know what a LoRA hyperparameter is.
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {
        "rank": 4, "alpha": 4.0, "learning_rate": 1e-3, "steps": 100, "batch_size": 4, "checkpoint_every": 50,
    },
    "default": {
        "rank": 4, "alpha": 4.0, "learning_rate": 1e-3, "steps": 300, "batch_size": 8,
        "checkpoint_every": 100,
    },
    "quality": {
        "rank": 16, "alpha": 16.0, "learning_rate": 2e-4, "steps": 1500, "batch_size": 8,
        "checkpoint_every": 250,
    },
}  # fmt: skip
PRESET_HELP = {
    "quick": "a first look in minutes (rank 4, 100 steps)",
    "default": "a usable style or subject (rank 4, 300 steps)",
    "quality": "more detail, slower (rank 16, 1500 steps)",
}

#: Per family, device memory (GiB) → the largest batch that fits at the native size, and whether gradient
#: checkpointing is needed: (below this many GiB, max batch, checkpointing). Estimates from the frozen weights
#: in bf16 (SD 1.5 ~1.7 GB, SDXL ~5 GB, SD3.5 medium/large ~5/16 GB, FLUX.1 ~24 GB) plus 512² or 1024²
#: activations at rank 16, as kohya's and SimpleTuner's guides size them.
_MEMORY_TIERS: dict[str, tuple[tuple[float, int, bool], ...]] = {
    "sd": ((8.0, 1, True), (16.0, 2, True), (24.0, 4, False)),
    "sdxl": ((12.0, 1, True), (24.0, 2, True), (48.0, 4, False)),
    "sd3": ((24.0, 1, True), (48.0, 2, True), (80.0, 4, False)),
    "flux": ((40.0, 1, True), (80.0, 2, True), (120.0, 4, False)),
}
#: FLUX.1's transformer alone is ~24 GB in bf16: below this, train on an int8 base
_FLUX_INT8_BELOW_GIB = 32.0

#: the model families a worker can train (studio.training.families holds one trainer for each)
TRAINABLE_FAMILIES = ("sd1", "sd2", "sdxl", "sd3", "flux")

#: One line per expert setting, for the CLI's --help and the Training tab's expert panel.
EXPERT_HELP: dict[str, str] = {
    "rank": "LoRA rank: more capacity (and a bigger file) as it grows; 4-16 for a style.",
    "alpha": "LoRA alpha: scales the update; usually equal to the rank.",
    "learning_rate": "Learning rate of the LoRA weights (1e-4 to 1e-3 is usual).",
    "steps": "Training steps.",
    "batch_size": "Images per step; lower it if the GPU runs out of memory.",
    "resolution": "Training side in pixels, a multiple of 8 (not set: the model's own, e.g. 1024 for SDXL).",
    "checkpoint_every": "Save a checkpoint (LoRA + sample images) every N steps.",
    "gradient_checkpointing": (
        "Recompute activations in the backward pass: much less GPU memory, about 20-30% slower "
        "(auto: on for GPUs with little memory)."
    ),
    "optimizer": "adamw; adamw8bit keeps the optimizer state in 8 bits: needs bitsandbytes, GPU only.",
    "quantize_base": (
        "none; int8: the frozen base in int8 (torchao) — FLUX on a 24 GB GPU (the LoRA still trains in fp32)."
    ),
}

DEFAULT_SAMPLE_PROMPTS = ("{trigger}", "a red circle, {trigger}", "a blue square, {trigger}")
DEFAULT_SAMPLE_SEEDS = (11, 22)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs (stored as JSON in the job row)."""

    base_model: str
    kind: str = "style"
    trigger: str = ""
    preset: str = "default"
    rank: int = 8
    alpha: float = 8.0
    learning_rate: float = 5e-4
    steps: int = 300
    batch_size: int = 4
    resolution: int | None = None  # None: the model's native size
    checkpoint_every: int = 100
    seed: int = 0
    caption_dropout: float = 0.0
    gradient_checkpointing: bool | None = None  # None: on for GPUs with little memory
    mixed_precision: bool | None = None  # None: on for GPUs
    cache_latents: bool = True
    optimizer: str = "adamw"  # adamw, or adamw8bit (bitsandbytes, GPU only: the [gpu] extra)
    quantize_base: str = "none"  # none, or int8: the frozen denoiser in int8 (torchao; FLUX on a 24 GB card)
    sample_prompts: tuple[str, ...] = DEFAULT_SAMPLE_PROMPTS
    sample_seeds: tuple[int, ...] = DEFAULT_SAMPLE_SEEDS
    sample_steps: int = 20
    sample_cfg: float = 5.0
    target_modules: tuple[str, ...] = ()  # empty: the base model's (engine.adapters.default_lora_targets)
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Rebuild from :meth:`as_dict` output (unknown keys are refused) and validate."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValidationError("config", f"unknown setting(s): {', '.join(unknown)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return validate(cls(**values))

    def sample_prompts_for_trigger(self) -> list[str]:
        """The fixed sample prompts with the trigger word filled in."""
        return [p.replace("{trigger}", self.trigger).strip(" ,") or self.trigger for p in self.sample_prompts]

    def sample_prompts_without_trigger(self) -> list[str]:
        """The same prompts with the trigger word left out (the quality gate's "without trigger" images);
        a prompt that is only the trigger becomes the empty prompt."""
        return [" ".join(p.replace("{trigger}", "").split()).strip(" ,") for p in self.sample_prompts]


def _number(name: str, value: Any, integer: bool) -> float:
    if isinstance(value, bool) or value is None:
        raise ValidationError(name, f"must be a number, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(name, f"must be a number, not {value!r}") from None
    if integer and number != int(number):
        raise ValidationError(name, f"must be a whole number, not {value!r}")
    low, high = LIMITS[name]
    if not low <= number <= high:
        raise ValidationError(name, f"must be between {low:g} and {high:g}, not {value!r}")
    return number


def validate(config: TrainConfig) -> TrainConfig:
    """Check every field; return the config with numbers normalised (ValidationError names the field)."""
    if not config.base_model or not str(config.base_model).strip():
        raise ValidationError("base_model", "is required")
    if config.kind not in KINDS:
        raise ValidationError("kind", f"must be one of {', '.join(KINDS)}, not {config.kind!r}")
    if config.preset not in PRESETS and config.preset != "custom":
        raise ValidationError("preset", f"must be one of {', '.join(PRESETS)}, not {config.preset!r}")
    values: dict[str, Any] = {}
    for name in ("rank", "steps", "batch_size", "checkpoint_every", "sample_steps"):
        values[name] = int(_number(name, getattr(config, name), integer=True))
    for name in ("alpha", "learning_rate", "caption_dropout"):
        values[name] = float(_number(name, getattr(config, name), integer=False))
    if config.resolution is not None:
        resolution = int(_number("resolution", config.resolution, integer=True))
        if resolution % 8:
            raise ValidationError("resolution", f"must be a multiple of 8, not {resolution}")
        values["resolution"] = resolution
    for name in ("gradient_checkpointing", "mixed_precision"):
        value = getattr(config, name)
        if value is not None and not isinstance(value, bool):
            raise ValidationError(name, f"must be true or false (or empty: auto), not {value!r}")
    if config.optimizer not in OPTIMIZERS:
        allowed = ", ".join(OPTIMIZERS)
        raise ValidationError("optimizer", f"must be one of {allowed}, not {config.optimizer!r}")
    if config.quantize_base not in QUANTIZATIONS:
        allowed = ", ".join(QUANTIZATIONS)
        raise ValidationError("quantize_base", f"must be one of {allowed}, not {config.quantize_base!r}")
    if not config.sample_prompts or not config.sample_seeds:
        raise ValidationError("sample_prompts", "at least one sample prompt and one seed are needed")
    if len(config.sample_prompts) * len(config.sample_seeds) > 16:
        raise ValidationError("sample_prompts", "at most 16 sample images per checkpoint")
    trigger = (config.trigger or "").strip()
    if any(c in trigger for c in ",\n"):
        raise ValidationError("trigger", "must be a single word or phrase without commas")
    return replace(config, trigger=trigger, **values)


def build_config(
    base_model: str,
    *,
    preset: str = "default",
    kind: str = "style",
    trigger: str = "",
    overrides: dict[str, Any] | None = None,
) -> TrainConfig:
    """A preset plus expert overrides (None values are ignored), validated."""
    if preset not in PRESETS:
        raise ValidationError("preset", f"must be one of {', '.join(PRESETS)}, not {preset!r}")
    values: dict[str, Any] = dict(PRESETS[preset])
    changed = {k: v for k, v in (overrides or {}).items() if v is not None}
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(changed) - known)
    if unknown:
        raise ValidationError("config", f"unknown setting(s): {', '.join(unknown)}")
    values.update(changed)
    if "rank" in changed and "alpha" not in changed:
        values["alpha"] = float(changed["rank"]) if _is_number(changed["rank"]) else changed["rank"]
    for key in ("sample_prompts", "sample_seeds", "target_modules"):
        if key in values and isinstance(values[key], list):
            values[key] = tuple(values[key])
    return validate(TrainConfig(base_model=base_model, kind=kind, trigger=trigger, preset=preset, **values))


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, bool)


def fit_to_memory(
    config: TrainConfig, device: str, memory_gib: float | None, family: str = "sd1"
) -> TrainConfig:
    """Size the batch and gradient checkpointing to the device and the model family (GPUs only; the CPU keeps
    the preset). Each change is written to ``notes``, which the job's message shows."""
    notes = list(config.notes)
    batch, checkpointing = config.batch_size, config.gradient_checkpointing
    mixed = config.mixed_precision if config.mixed_precision is not None else device == "cuda"
    if device == "cuda" and memory_gib is not None:
        tiers = _MEMORY_TIERS.get(family, _MEMORY_TIERS["sd"])
        for limit, max_batch, need_checkpointing in tiers:
            if memory_gib < limit:
                if batch > max_batch:
                    notes.append(f"batch {batch} → {max_batch} for {memory_gib:.0f} GiB of GPU memory")
                    batch = max_batch
                if checkpointing is None:
                    checkpointing = need_checkpointing
                break
        if family == "flux" and memory_gib < _FLUX_INT8_BELOW_GIB and config.quantize_base == "none":
            notes.append(
                f"FLUX on {memory_gib:.0f} GiB: set quantize_base int8 if it runs out of memory"
            )
    if checkpointing is None:
        checkpointing = False
    return replace(
        config,
        batch_size=batch,
        gradient_checkpointing=checkpointing,
        mixed_precision=mixed,
        notes=tuple(notes),
    )


def presets() -> list[dict[str, Any]]:
    """The presets with their settings, for the UI's picker."""
    return [{"name": name, "help": PRESET_HELP[name], **values} for name, values in PRESETS.items()]


def check_trainable(base_model: str) -> str:
    """The family of ``base_model`` when a worker can train LoRAs on it.

    Otherwise a ValidationError names the model and its family; it runs at queue time, so nothing is queued
    that no worker can train.
    """
    from studio.engine.models import resolve_model
    from studio.errors import StudioError

    try:
        family = resolve_model(base_model).family
    except StudioError as exc:
        raise ValidationError("base_model", f"{base_model} cannot be trained: {exc}") from None
    if family not in TRAINABLE_FAMILIES:
        raise ValidationError(
            "base_model",
            f"{base_model} is a {family} model; LoRA training supports {', '.join(TRAINABLE_FAMILIES)}",
        )
    return family
