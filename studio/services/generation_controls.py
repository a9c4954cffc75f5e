"""Control maps: which ControlNet a brand's layout templates use, whether a template fits the brand's model,
and the control maps themselves (made from a template's source image on first use, and stored).

:class:`ControlMaps` adds a plan's templates to a validated request as ControlNet units
(:meth:`ControlMaps.with_controls`), and finds the stored control maps a generation used again for a
regenerate (:meth:`ControlMaps.stored_maps`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from studio.config import Settings
from studio.db.generation_models import Generation
from studio.db.models import ControlTemplate
from studio.engine.models import model_name
from studio.errors import ModelError, NotFoundError, StudioError, ValidationError
from studio.services.generation_plan import Plan, TemplateUse, stored_file
from studio.services.generation_save import png_bytes
from studio.storage import ContentStore, stored_path

if TYPE_CHECKING:  # pragma: no cover
    from studio.engine.generate import Engine
    from studio.engine.request import GenerationRequest

#: ControlNet used with the embedded model's templates
EMBEDDED_PREFIX = "embedded:"
MIN_CONTROL_SIDE = 64


def control_map_size(info: Any) -> tuple[int, int]:
    """Control maps are made at the model's default size, at least 64 a side (controlnet-aux rounds its
    working size to multiples of 64); the engine fits them to each output size."""
    scale = max(1.0, MIN_CONTROL_SIDE / min(info.default_width, info.default_height))
    return round(info.default_width * scale), round(info.default_height * scale)


class ControlMaps:
    """ControlNets and control maps of a brand's templates (see the module docstring).

    ``controlnets`` maps a base model to the ControlNet its templates use when they name none."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        controlnets: Mapping[str, str] | None = None,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._controlnets = dict(controlnets or {})
        self._template_store = ContentStore(settings.templates_dir)
        self._checks: dict[tuple[str, str], str | None] = {}

    def controlnet_for(self, engine: Engine, base_model: str) -> str:
        """The ControlNet used with ``base_model``'s templates: configured, the embedded model's own, or a
        ``controlnet/`` folder inside the model's folder."""
        configured = self._controlnets.get(base_model)
        if configured:
            return configured
        if base_model.startswith(EMBEDDED_PREFIX):
            return base_model
        folder = engine.resolve(base_model)[0].path / "controlnet"
        if (folder / "config.json").is_file():
            return str(folder)
        raise ModelError(f"no ControlNet is configured for base model {model_name(base_model)!r}")

    def template_problem(self, engine: Engine, template: ControlTemplate, model: str) -> str | None:
        """Why ``template`` cannot be used with ``model``: its ControlNet is for another family, or the model
        has no ControlNet of its own; None when it can."""
        ref = template.controlnet_model
        try:
            engine.model_info(model)
        except StudioError:
            return None  # the model itself is missing: generation says so
        if not ref:
            try:
                self.controlnet_for(engine, model)
            except StudioError as exc:
                return str(exc)
            return None
        key = (ref, model)
        if key not in self._checks:  # resolving a ControlNet hashes its folder: once per pair
            try:
                engine.check_controlnet(ref, model, field="controlnet")
                self._checks[key] = None
            except ValidationError as exc:
                self._checks[key] = str(exc).partition(": ")[2]
        return self._checks[key]

    def with_controls(self, engine: Engine, plan: Plan, request: GenerationRequest) -> GenerationRequest:
        """Add the templates' control maps (made and stored on first use) to a validated request."""
        if not plan.templates:
            return request
        from studio.engine.request import ControlSpec

        default: str | None = None
        controls = []
        for template in plan.templates:
            control_path = template.control_path or self._make_control_map(engine, template, plan.base_model)
            if template.controlnet is None and default is None:
                default = self.controlnet_for(engine, plan.base_model)
            controls.append(
                ControlSpec(
                    template.controlnet or default or "",
                    control_path,
                    template.scale,
                    template.start,
                    template.end,
                    str(template.template_id),
                )
            )
        return engine.validate(replace(request, controls=tuple(controls)))

    def _make_control_map(self, engine: Engine, template: TemplateUse, base_model: str) -> Path:
        """Make a template's missing control map at the model's default size and store it."""
        from studio.engine.control import make_control_map

        if template.source_path is None or not template.source_path.is_file():
            raise NotFoundError(f"template {template.name}: its source image is missing")
        control = make_control_map(
            template.source_path, template.preprocessor, *control_map_size(engine.model_info(base_model))
        )
        stored = self._template_store.put_bytes(png_bytes(control), ".png")
        with self._sessions.begin() as session:
            row = session.get(ControlTemplate, template.template_id)
            if row is not None and row.control_image_path is None:
                row.control_image_path = stored_path(self._settings.home, stored.path)
        return stored.path

    def stored_maps(self, session: Session, generation: Generation) -> dict[str, str | Path]:
        """The control maps ``generation`` used that are still stored: control image sha256 → file."""
        images: dict[str, str | Path] = {}
        for used in generation.templates:
            template = session.get(ControlTemplate, used.template_id) if used.template_id else None
            path = stored_file(self._settings, template.control_image_path) if template is not None else None
            if path is not None and path.is_file():
                images[used.control_image_sha256] = path
        return images
