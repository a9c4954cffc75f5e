"""A brand's base model: pinned by an admin, or the studio default (it follows STUDIO_BASE_MODEL).

``brands.base_model`` holds the pin; NULL means "the studio default". Everything that needs a brand's model
reads it through :func:`effective_model`. LoRA versions record the family of the model they were trained
on (publish) or added for (upload, sync: the brand's model at that time); a LoRA whose family differs from
the family of the brand's model does not fit it (:func:`misfit`). Family lookups read configs only
(:func:`studio.engine.models.resolve_model`: no torch).
"""

from __future__ import annotations

from collections.abc import Callable

from studio.config import Settings
from studio.db.models import Brand, LoraVersion
from studio.engine.models import model_name as model_name  # shown names: the services' and the UI's entry
from studio.errors import ModelError, NotFoundError, ValidationError

#: what ``studio brands set-model`` and the Brands tab accept for "follow the studio default"
DEFAULT_WORDS = ("", "default")
DEFAULT_LABEL = "default: follows STUDIO_BASE_MODEL"


def effective_model(brand: Brand, settings: Settings) -> str:
    """The model the brand generates and trains with: its pin, else ``settings.base_model``."""
    return brand.base_model or settings.base_model


def model_choice(text: str | None) -> str | None:
    """An admin's input → the pin to store: None for blank or ``default``, else the stripped reference."""
    value = (text or "").strip()
    return None if value.lower() in DEFAULT_WORDS else value


def model_label(model: str, pinned: bool) -> str:
    """``<model> (pinned)`` or ``<model> (default: follows STUDIO_BASE_MODEL)``, for listings."""
    return f"{model} ({'pinned' if pinned else DEFAULT_LABEL})"


def check_model(ref: str, field: str = "model") -> str:
    """The family of a model an admin names; a ValidationError naming it when it does not resolve."""
    from studio.engine.models import resolve_model

    try:
        return resolve_model(ref).family
    except (ModelError, NotFoundError) as exc:
        raise ValidationError(field, f"{ref!r} cannot be used: {exc}") from None


def misfit(made_for: str | None, family: str | None) -> str | None:
    """Why a LoRA/ControlNet made for ``made_for`` does not fit a ``family`` model; None when it fits or
    either family is unknown."""
    if made_for and family and made_for != family:
        return f"made for {made_for}, this brand's model is {family}"
    return None


class Families:
    """Model reference → family (None when it cannot be resolved), each reference looked up once.

    ``lookup`` defaults to :func:`studio.engine.models.resolve_model`'s family; the generation service passes
    its engine's cached one.
    """

    def __init__(self, lookup: Callable[[str], str] | None = None) -> None:
        self._lookup = lookup or _resolved_family
        self._known: dict[str, str | None] = {}

    def __call__(self, ref: str | None) -> str | None:
        if not ref:
            return None
        if ref not in self._known:
            try:
                self._known[ref] = self._lookup(ref)
            except (ModelError, NotFoundError):
                self._known[ref] = None
        return self._known[ref]

    def of_version(self, version: LoraVersion) -> str | None:
        """The family a LoRA version was made for (recorded, else its base model's)."""
        return version.family or self(version.base_model)

    def lora_misfits(self, brand: Brand, settings: Settings) -> dict[str, str]:
        """Adapter name → why its active version does not fit the brand's model (fitting ones left out)."""
        active = [(a.name, a.active_version) for a in brand.adapters if a.active_version is not None]
        if not active:
            return {}
        family = self(effective_model(brand, settings))
        reasons = {}
        for name, version in active:
            reason = misfit(self.of_version(version), family)
            if reason is not None:
                reasons[name] = reason
        return reasons


def _resolved_family(ref: str) -> str:
    from studio.engine.models import resolve_model

    return resolve_model(ref).family
