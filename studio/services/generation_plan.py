"""From what a user asks for to what is sent: the request, the plan, the prompt as sent, the number limits.

:class:`GenerateInput` is what the form, the API and the CLI ask for (``None`` = the brand's default).
:func:`assemble_prompt` builds the prompt as sent: the style template around the prompt as typed, with
the trigger words of the LoRAs used; when the model's text encoder would not read all of it (CLIP: 75
tokens, the embedded model: 14), the trigger words go first, so that they are never the part that is cut.
:func:`number_problems` checks the numbers against the engine's limits
(:mod:`studio.engine.limits`) and names every one out of range, so a form can say so next to each field;
:func:`cap_problems` checks them against the tighter caps of the model's family (``Settings.family_limits``)
and :func:`prompt_problems` the lengths of the prompts as typed.
:class:`Plan` is everything read from the database for one request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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


@dataclass(frozen=True)
class LoraUse:
    adapter: str
    version_id: int
    sha256: str
    path: Path
    weight: float
    trigger_words: tuple[str, ...]


@dataclass(frozen=True)
class TemplateUse:
    template_id: int
    name: str
    preprocessor: str
    source_path: Path | None
    control_path: Path | None
    scale: float
    start: float
    end: float
    controlnet: str | None = None  # the template's ControlNet; None = the base model's own/configured one


@dataclass(frozen=True)
class Plan:
    """Everything read from the database for one request (so the engine runs outside any transaction)."""

    user_id: int
    brand_id: int
    brand_slug: str
    base_model: str
    palette: tuple[str, ...]
    palette_threshold: float | None
    prompt: str
    negative_prompt: str
    final_prompt: str
    final_negative: str
    cfg: float
    steps: int
    sampler: str
    seed: int | None
    width: int | None
    height: int | None
    batch_size: int
    loras: tuple[LoraUse, ...]
    templates: tuple[TemplateUse, ...]
    #: the non-default Guidance fields to generate with; None = plain CFG
    guidance: dict[str, Any] | None = None


def merge_negative(brand_negative: str, user_negative: str) -> str:
    """The brand's negative terms, then the user's that are not already there (comma separated)."""
    terms: list[str] = []
    seen: set[str] = set()
    for text in (brand_negative, user_negative):
        for term in (part.strip() for part in (text or "").split(",")):
            if term and term.lower() not in seen:
                seen.add(term.lower())
                terms.append(term)
    return ", ".join(terms)


def _word(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-]){re.escape(term.strip())}(?![\w-])", re.IGNORECASE)


def apply_style(style_template: str, prompt: str, trigger_words: Sequence[str]) -> str:
    """The style template around the prompt, then the trigger words that are not in it yet."""
    text = (style_template or "{prompt}").replace("{prompt}", prompt.strip())
    if not prompt.strip():  # the template alone (a counter's preview): no dangling comma
        text = text.strip(" ,")
    lowered = text.lower()
    missing = [w for w in trigger_words if w.strip() and w.lower() not in lowered]
    return ", ".join([text, *missing]) if missing else text


def assemble_prompt(
    style_template: str,
    prompt: str,
    trigger_words: Sequence[str],
    brand_words: Sequence[str] = (),
    fits: Callable[[str], bool] | None = None,
) -> str:
    """The prompt as sent: the brand's order (:func:`apply_style`) when the model reads all of it
    (``fits(text)``), else the trigger words first, so that they are never the part that is cut.

    First: ``trigger_words`` (of the LoRAs used), and ``brand_words`` (every trigger word of the brand) that
    the template or the prompt has; each is taken out where it stood, so it is sent once:
    ``"{prompt}, emberstyle"`` with ``"a circle"`` → ``"emberstyle, a circle"``. ``fits=None`` always puts
    them first. (Not always first: a model trained on short captions with the trigger word last, like the
    embedded one, draws noise when its 14 tokens start with a 10-letter trigger word.)
    """
    styled = apply_style(style_template, prompt, trigger_words)
    if fits is not None and fits(styled):
        return styled
    text = (style_template or "{prompt}").replace("{prompt}", prompt.strip())
    first: dict[str, str] = {}
    for term in trigger_words:
        if term.strip():
            first.setdefault(term.strip().lower(), term.strip())
    for term in brand_words:
        if term.strip() and _word(term).search(text):
            first.setdefault(term.strip().lower(), term.strip())
    if not first:
        return styled
    for term in first.values():
        text = _word(term).sub("", text)
    text = re.sub(r"\s*,(\s*,)+", ",", text)  # the commas a removed word leaves
    text = re.sub(r"\s{2,}", " ", text).strip(" ,")
    return ", ".join([*first.values(), text]) if text else ", ".join(first.values())


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
