"""What to generate: :class:`GenerationRequest` and its parts, the checks of its fields, and the one mapping
between a request and a stored :class:`~studio.engine.recipe.Recipe`.

A request speaks diffusers' names (``guidance_scale``, ``num_inference_steps``) from the planner down to
the pipeline call. The recipe JSON keeps its own keys (``steps``), which existing PNGs carry: the two are
mapped here only (:data:`RECIPE_KEYS`), by :func:`recipe_settings` and :func:`request_from_recipe`.

Limits (each a ValidationError naming the field): prompt 1-2000 characters, ``guidance_scale`` 1-30,
``num_inference_steps`` 1-150, ``batch_size`` 1-``max_batch`` (8), LoRA weights 0-1.5, at most 4 ControlNet
units with scale 0-2 and 0 ≤ start < end ≤ 1, seed 0-2**32-1 (None = random, always recorded). The size
depends on the model and is checked by the :class:`~studio.engine.generate.Engine`.

This module imports neither torch nor diffusers.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from studio.engine.guidance_settings import Guidance
from studio.engine.limits import (
    MAX_CFG,
    MAX_CONTROLS,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_STEPS,
    MIN_CFG,
)
from studio.engine.recipe import PLAIN_KERNELS, Recipe
from studio.errors import ValidationError

#: ``progress(step, total)``: denoising steps done so far of the whole request (all its images)
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA to apply: adapter name, ``.safetensors`` path, expected sha256 (None = not checked), weight."""

    name: str
    path: str | Path
    sha256: str | None = None
    weight: float = 1.0
    version_id: str | None = None


@dataclass(frozen=True)
class ControlSpec:
    """A ControlNet unit: ControlNet reference, control map (PIL image or file), scale, guidance start/end.

    ``image_sha256`` is recorded in the recipe (default: the hash of the control map's pixels).
    """

    controlnet: str
    image: Image.Image | str | Path | bytes
    scale: float = 1.0
    start: float = 0.0
    end: float = 1.0
    template_id: str | None = None
    image_sha256: str | None = None


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate.  Names follow diffusers; ``None`` means the model's default (seed: random)."""

    prompt: str
    negative_prompt: str = ""
    guidance_scale: float = 7.0
    num_inference_steps: int = 20
    seed: int | None = None
    sampler: str | None = None
    width: int | None = None
    height: int | None = None
    batch_size: int = 1
    loras: tuple[LoraSpec, ...] = ()
    controls: tuple[ControlSpec, ...] = ()
    prompt_typed: str | None = None
    model: str | None = None
    model_revision: str | None = None
    guidance: Guidance | None = None  # None = plain CFG (studio.engine.guidance)
    kernels: str | None = None  # plain or batch-invariant (studio.engine.recipe.KERNELS); None = the engine's

    def __post_init__(self) -> None:
        # accept plain tuples/lists as documented: (name, path, sha256, weight) and
        # (controlnet, image, scale, start, end)
        loras = tuple(item if isinstance(item, LoraSpec) else LoraSpec(*item) for item in self.loras)
        controls = tuple(
            item if isinstance(item, ControlSpec) else ControlSpec(*item) for item in self.controls
        )
        object.__setattr__(self, "loras", loras)
        object.__setattr__(self, "controls", controls)
        if isinstance(self.guidance, dict):
            object.__setattr__(self, "guidance", Guidance.from_dict(self.guidance))


# ------------------------------------------------------------------------------------------ checks


def check_prompts(request: GenerationRequest) -> str:
    """The prompt (1-``MAX_PROMPT_CHARS`` characters) and the negative prompt's length; returns the prompt."""
    prompt = request.prompt if isinstance(request.prompt, str) else ""
    if not prompt.strip():
        raise ValidationError("prompt", "must not be empty")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValidationError("prompt", f"is longer than {MAX_PROMPT_CHARS} characters")
    if len(request.negative_prompt or "") > MAX_PROMPT_CHARS:
        raise ValidationError("negative_prompt", f"is longer than {MAX_PROMPT_CHARS} characters")
    return prompt


def check_numbers(request: GenerationRequest, max_batch: int) -> tuple[float, int, int]:
    """``guidance_scale``, ``num_inference_steps`` and ``batch_size`` checked against the limits."""
    cfg = number("guidance_scale", request.guidance_scale)
    if not MIN_CFG <= cfg <= MAX_CFG:
        raise ValidationError("guidance_scale", f"{cfg:g} is outside {MIN_CFG:g}-{MAX_CFG:g}")
    steps = integer("num_inference_steps", request.num_inference_steps)
    if not 1 <= steps <= MAX_STEPS:
        raise ValidationError("num_inference_steps", f"{steps} is outside 1-{MAX_STEPS}")
    batch = integer("batch_size", request.batch_size)
    if not 1 <= batch <= max_batch:
        raise ValidationError("batch_size", f"{batch} is outside 1-{max_batch}")
    return cfg, steps, batch


def check_seed(seed: Any) -> int:
    """The request's seed (0-``MAX_SEED``); a random one for None."""
    value = secrets.randbelow(MAX_SEED + 1) if seed is None else integer("seed", seed)
    if not 0 <= value <= MAX_SEED:
        raise ValidationError("seed", f"{value} is outside 0-{MAX_SEED}")
    return value


def check_controls(controls: tuple[ControlSpec, ...]) -> None:
    """At most ``MAX_CONTROLS`` units, each with scale 0-2, 0 ≤ start < end ≤ 1 and a ControlNet named."""
    if len(controls) > MAX_CONTROLS:
        raise ValidationError("controls", f"at most {MAX_CONTROLS} ControlNet units, got {len(controls)}")
    for index, unit in enumerate(controls):
        field_name = f"controls[{index}]"
        scale = number(f"{field_name}.scale", unit.scale)
        start = number(f"{field_name}.start", unit.start)
        end = number(f"{field_name}.end", unit.end)
        if not 0.0 <= scale <= 2.0:
            raise ValidationError(f"{field_name}.scale", f"{scale:g} is outside 0-2")
        if not 0.0 <= start < end <= 1.0:
            raise ValidationError(f"{field_name}.start", "guidance window needs 0 ≤ start < end ≤ 1")
        if not str(unit.controlnet or "").strip():
            raise ValidationError(f"{field_name}.controlnet", "must name a ControlNet model")


def check_guidance(guidance: Any, family: str) -> Guidance | None:
    """The request's guidance, None when it is plain CFG; FLUX (distilled guidance, no CFG pair) refuses
    any other."""
    if guidance is None:
        return None
    if not isinstance(guidance, Guidance):
        raise ValidationError("guidance", "must be a studio.engine.guidance.Guidance or a dict of its fields")
    if guidance.is_plain:
        return None
    if family == "flux":
        raise ValidationError(
            "guidance",
            f"{guidance.method} needs classifier-free guidance; FLUX models use distilled guidance "
            "(one pass per step, no unconditional prediction to combine)",
        )
    return guidance


def number(field_name: str, value: Any) -> float:
    """``value`` as a finite float, else a ValidationError naming ``field_name``."""
    if isinstance(value, bool):
        raise ValidationError(field_name, "must be a number")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise ValidationError(field_name, f"must be a number, not {value!r}") from None
    if result != result or result in (float("inf"), float("-inf")):
        raise ValidationError(field_name, "must be a finite number")
    return result


def integer(field_name: str, value: Any) -> int:
    """``value`` as a whole number (an int, a whole float or digits), else a ValidationError."""
    if isinstance(value, bool):
        raise ValidationError(field_name, "must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValidationError(field_name, f"must be a whole number, not {value!r}")


# ----------------------------------------------------------------------------------- recipe mapping

#: request field → recipe key, for what a recipe keeps of a request (the recipe JSON's keys stay as they are,
#: so the recipes in existing PNGs regenerate as before)
RECIPE_KEYS: dict[str, str] = {
    "prompt": "prompt",
    "prompt_typed": "prompt_typed",
    "negative_prompt": "negative_prompt",
    "sampler": "sampler",
    "num_inference_steps": "steps",
    "guidance_scale": "guidance_scale",
    "seed": "seed",
    "width": "width",
    "height": "height",
    "kernels": "kernels",
}


def recipe_settings(request: GenerationRequest) -> dict[str, Any]:
    """The recipe's fields for a validated ``request`` (seed, sampler and size filled in), under the recipe's
    keys: the settings that make its first image again (the model, LoRAs and controls are added by the
    engine, which knows their files)."""
    settings = {key: getattr(request, field) for field, key in RECIPE_KEYS.items()}
    settings["prompt_typed"] = request.prompt if request.prompt_typed is None else request.prompt_typed
    settings["steps"] = int(request.num_inference_steps)
    settings["guidance_scale"] = float(request.guidance_scale)
    settings["guidance"] = None if request.guidance is None else request.guidance.to_dict()
    settings["kernels"] = request.kernels or PLAIN_KERNELS
    return settings


def request_from_recipe(
    recipe: Recipe,
    lora_paths: dict[str, str | Path] | None = None,
    control_images: dict[str, Image.Image | str | Path] | None = None,
) -> GenerationRequest:
    """A request that makes ``recipe``'s image again (batch of one, the recipe's own seed).

    ``lora_paths`` maps LoRA sha256 → file; ``control_images`` maps control image sha256 → image.  A LoRA or
    control image that is not supplied raises a ValidationError naming it.
    """
    lora_paths = lora_paths or {}
    control_images = control_images or {}
    loras = []
    for entry in recipe.loras:
        path = lora_paths.get(entry.sha256)
        if path is None:
            raise ValidationError("loras", f"LoRA {entry.name} ({entry.sha256[:12]}…) is no longer available")
        loras.append(LoraSpec(entry.name, path, entry.sha256, entry.weight, entry.version_id))
    controls = []
    for entry in recipe.controls:
        image = control_images.get(entry.control_image_sha256)
        if image is None:
            raise ValidationError(
                "controls", f"control image {entry.control_image_sha256[:12]}… is no longer available"
            )
        controls.append(
            ControlSpec(
                entry.controlnet,
                image,
                entry.scale,
                entry.start,
                entry.end,
                entry.template_id,
                entry.control_image_sha256,
            )
        )
    return GenerationRequest(
        **{field: getattr(recipe, key) for field, key in RECIPE_KEYS.items()},
        batch_size=1,
        loras=tuple(loras),
        controls=tuple(controls),
        model=recipe.base_model,
        model_revision=recipe.base_model_revision,
        guidance=None if recipe.guidance is None else Guidance.from_dict(recipe.guidance),
    )
