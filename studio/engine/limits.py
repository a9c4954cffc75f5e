"""What a generation request may ask for: the engine's limits, without importing torch.

The engine refuses a request outside them (a ValidationError naming the field); the services and the UI
read the same numbers to say so next to the field before anything runs.

:class:`FamilyLimits` are the tighter caps the studio sets per model family (pixels per image, images and
steps per request): ``Settings.family_limits`` holds them (``STUDIO_LIMITS_<FAMILY>``), with
:data:`DEFAULT_FAMILY_LIMITS` as the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_PROMPT_CHARS = 2000
MIN_CFG, MAX_CFG = 1.0, 30.0
MIN_STEPS, MAX_STEPS = 1, 150
MAX_BATCH = 8
MAX_SIDE = 4096
MAX_CONTROLS = 4
MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class FamilyLimits:
    """What one request may ask of a model family: ``pixels`` per image (width × height), ``images`` per
    request and denoising ``steps`` per image."""

    pixels: int
    images: int
    steps: int

    def describe(self) -> str:
        return f"pixels={self.pixels},images={self.images},steps={self.steps}"


#: the embedded tiny models (``embedded:…``) whatever pipeline they use, then the pipeline families
EMBEDDED_FAMILY = "embedded"
DEFAULT_FAMILY_LIMITS: dict[str, FamilyLimits] = {
    EMBEDDED_FAMILY: FamilyLimits(pixels=512 * 512, images=8, steps=50),
    "sd1": FamilyLimits(pixels=1024 * 1024, images=4, steps=50),
    "sd2": FamilyLimits(pixels=1024 * 1024, images=4, steps=50),
    "sdxl": FamilyLimits(pixels=1536 * 1536, images=4, steps=60),
    "sd3": FamilyLimits(pixels=1536 * 1536, images=4, steps=60),
    "flux": FamilyLimits(pixels=1536 * 1536, images=4, steps=50),
}
#: the limits of a model whose family is unknown (it cannot be read: generation says why) or not listed
FALLBACK_FAMILY = "sd1"


def family_key(model: str, family: str | None) -> str:
    """The key of ``model`` in the limits table: ``embedded`` for the studio's own models, else its family."""
    if model.startswith("embedded:"):
        return EMBEDDED_FAMILY
    return family if family in DEFAULT_FAMILY_LIMITS else FALLBACK_FAMILY
