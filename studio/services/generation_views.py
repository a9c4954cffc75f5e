"""What the Generate form reads before a run: the brand's options, a prompt preview, a prompt check."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.engine.limits import FamilyLimits


@dataclass(frozen=True)
class PromptPreview:
    """The prompts exactly as they will be sent, and what the brand added."""

    prompt: str
    negative_prompt: str
    trigger_words: tuple[str, ...]
    loras: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class PromptCheck:
    """What the model will read of a prompt: the prompt as sent, ``tokens`` / ``limit`` of the model's
    longest-reading text encoder and the text past it (``cut``); for a model with a fixed vocabulary (the
    embedded one) the words it knows and the typed words it does not (trigger words aside); a banned term."""

    prompt: str
    tokens: int
    limit: int
    cut: str
    trigger_words: tuple[str, ...]
    known_words: tuple[str, ...] | None
    unknown_words: tuple[str, ...]
    banned_term: str | None = None
    #: why nothing could be counted (the model's tokenizer cannot be read); tokens and limit are 0 then
    problem: str = ""


@dataclass(frozen=True)
class GenerationOptions:
    """What the Generate form offers for a brand (defaults, sizes, LoRAs with weights, templates).

    ``lora_issues`` / ``template_issues``: (name, reason) of the LoRAs and templates that do not fit the
    brand's model (``base_model``, of ``model_family``); the form shows them disabled with the reason.
    """

    brand_slug: str
    brand_name: str
    default_cfg: float
    default_steps: int
    default_sampler: str
    samplers: tuple[str, ...]
    sizes: tuple[tuple[str, int, int], ...]
    default_size: str | None
    loras: tuple[tuple[str, float, tuple[str, ...]], ...]
    templates: tuple[tuple[str, Path | None], ...]
    #: (name, small RGB image of the control map or source), for pickers that cannot read files
    thumbnails: tuple[tuple[str, Any], ...] = ()
    base_model: str = ""
    model_family: str | None = None
    lora_issues: tuple[tuple[str, str], ...] = ()
    template_issues: tuple[tuple[str, str], ...] = ()
    #: what one request may ask of the brand's model family, and whether sizes outside ``sizes`` are allowed
    limits: FamilyLimits | None = None
    allow_custom_sizes: bool = False
    #: the brand's default guidance (non-default Guidance fields), else its model's recommendation
    #: (``guidance_from_model``); None = plain CFG
    default_guidance: dict[str, Any] | None = None
    guidance_from_model: bool = False
