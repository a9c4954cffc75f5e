"""What a user asks for (:class:`GenerateInput`, the form's, the API's and the CLI's words: ``cfg``,
``steps``), and the checks it gets before anything is read from the database.

:func:`number_problems` checks the numbers against the engine's limits (:mod:`studio.engine.limits`) and
names every one out of range, so a form can say so next to each field; :func:`cap_problems` checks them
against the tighter caps of the model's family (``Settings.family_limits``) and :func:`prompt_problems` the
lengths of the prompts as typed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from studio.engine.guidance_settings import Guidance
from studio.engine.limits import (
    MAX_BATCH,
    MAX_CFG,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_STEPS,
    MIN_CFG,
    MIN_STEPS,
    FamilyLimits,
)
from studio.errors import ValidationError

MIN_LORA_WEIGHT, MAX_LORA_WEIGHT = 0.0, 1.5
#: the numbers a request may ask for: field → (low, high, whole number)
LIMITS: dict[str, tuple[float, float, bool]] = {
    "cfg": (MIN_CFG, MAX_CFG, False),
    "steps": (MIN_STEPS, MAX_STEPS, True),
    "batch_size": (1, MAX_BATCH, True),
    "seed": (0, MAX_SEED, True),
}


@dataclass(frozen=True)
class GenerateInput:
    """What a user asks for. ``None`` means the brand's default.

    ``loras`` maps adapter name → weight (0–1.5; 0 leaves it out); adapters not named use their default
    weight. ``size`` names one of the brand's size presets (or is ``WIDTHxHEIGHT``); ``width``/``height`` ask
    for a custom size.
    ``templates`` are layout template names of the brand.
    ``guidance`` maps fields of :class:`studio.engine.guidance_settings.Guidance` (``{"method": "cfg"}`` is
    plain CFG); None is the brand's default guidance.
    """

    brand: str
    prompt: str
    negative_prompt: str = ""
    cfg: float | None = None
    steps: int | None = None
    seed: int | None = None
    sampler: str | None = None
    size: str | None = None
    width: int | None = None
    height: int | None = None
    loras: Mapping[str, float] = field(default_factory=dict)
    templates: Sequence[str] = ()
    batch_size: int = 1
    guidance: Mapping[str, Any] | None = None


def number_problems(request: GenerateInput) -> list[ValidationError]:
    """Every number of ``request`` that is not a number, not whole where it must be, or out of range
    (``None`` is the brand's default, fine); LoRA weights 0-1.5."""
    problems = []
    for name, (low, high, whole) in LIMITS.items():
        value = getattr(request, name)
        if value is None:
            continue
        try:
            check_number(name, value, low, high, whole=whole)
        except ValidationError as problem:
            problems.append(problem)
    for adapter, weight in request.loras.items():
        try:
            lora_weight(adapter, weight)
        except ValidationError as problem:
            problems.append(problem)
    if request.guidance is not None:
        try:
            Guidance.from_dict(request.guidance)
        except ValidationError as problem:
            problems.append(problem)
    return problems


def check_number(name: str, value: Any, low: float, high: float, *, whole: bool = False) -> float:
    """``value`` as a number in ``low``-``high`` (a whole number with ``whole``), else a ValidationError."""
    if isinstance(value, bool):
        raise ValidationError(name, "must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(name, f"must be a number, not {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValidationError(name, "must be a finite number")
    if whole and not number.is_integer():
        raise ValidationError(name, f"{number:g} is not a whole number")
    if not low <= number <= high:
        raise ValidationError(name, f"{number:g} is outside {low:g}-{high:g}")
    return number


def lora_weight(name: str, value: Any) -> float:
    """A LoRA weight, 0-1.5 (a ValidationError naming ``loras.NAME`` otherwise)."""
    return check_number(f"loras.{name}", value, MIN_LORA_WEIGHT, MAX_LORA_WEIGHT)


def prompt_problems(prompt: str, negative_prompt: str) -> list[ValidationError]:
    """The prompt and the negative prompt as typed, each at most ``MAX_PROMPT_CHARS`` characters."""
    problems = []
    for name, text in (("prompt", prompt), ("negative_prompt", negative_prompt)):
        if isinstance(text, str) and len(text) > MAX_PROMPT_CHARS:
            why = f"is {len(text):,} characters long; at most {MAX_PROMPT_CHARS:,} are allowed"
            problems.append(ValidationError(name, why))
    return problems


def cap_problems(
    limits: FamilyLimits, family: str, steps: Any, images: Any, size: tuple[int, int] | None
) -> list[ValidationError]:
    """What of ``steps``, ``images`` (per request) and ``size`` (width, height) is over the caps of the model
    ``family`` (each a ValidationError naming the form's field); values that are not numbers are left to
    :func:`number_problems`."""
    problems = []
    of = f"the limit for {family} models"
    if isinstance(steps, int | float) and steps > limits.steps:
        problems.append(ValidationError("steps", f"{steps:g} is more than {limits.steps} steps, {of}"))
    if isinstance(images, int | float) and images > limits.images:
        why = f"{images:g} images is more than {limits.images}, {of}"
        problems.append(ValidationError("batch_size", why))
    if size is not None and size[0] * size[1] > limits.pixels:
        width, height = size
        side = int(limits.pixels**0.5)
        problems.append(
            ValidationError(
                "size",
                f"{width}x{height} is {width * height:,} pixels, more than {limits.pixels:,} "
                f"(about {side}x{side}), {of}",
            )
        )
    return problems
