"""From what a user asks for to what is sent: :class:`Planner` reads everything one request needs from the
database and refuses bad input before anything runs; :class:`Plan` is what it read.

The input is a :class:`~studio.services.generation_input.GenerateInput` (the form, the API, the CLI); the
prompt as sent is built by :mod:`studio.services.generation_prompt`, the size and the banned terms are the
brand's rules (:mod:`studio.services.generation_rules`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from studio.config import Settings
from studio.db.models import Brand, ControlTemplate, LoraAdapter, LoraVersion, User
from studio.engine.guidance_settings import Guidance
from studio.engine.limits import FamilyLimits, family_key
from studio.engine.request import GenerationRequest, LoraSpec
from studio.errors import NotFoundError, StudioError, ValidationError
from studio.services.brand_files import SAMPLERS, compact_guidance
from studio.services.brand_models import Families, effective_model
from studio.services.generation_input import (
    GenerateInput,
    cap_problems,
    lora_weight,
    number_problems,
    prompt_problems,
)
from studio.services.generation_prompt import assemble_prompt, merge_negative
from studio.services.generation_rules import refuse_banned, requested_size
from studio.services.permissions import readable_brand, require_role
from studio.services.views import Actor
from studio.storage import home_path

if TYPE_CHECKING:  # pragma: no cover
    from studio.engine.generate import Engine


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
    """Everything read from the database for one request (so the engine runs outside any transaction).

    ``request`` is what the engine is asked for, in diffusers' names (the prompts as sent, the brand's
    defaults filled in; without the templates' ControlNet units, which
    :class:`~studio.services.generation_controls.ControlMaps` adds). The rest is what the rows record: the
    author and brand, the prompts as typed, the LoRA versions and templates used."""

    user_id: int
    brand_id: int
    brand_slug: str
    palette: tuple[str, ...]
    palette_threshold: float | None
    prompt: str
    negative_prompt: str
    request: GenerationRequest
    loras: tuple[LoraUse, ...]
    templates: tuple[TemplateUse, ...]

    @property
    def base_model(self) -> str:
        """The model the request runs on."""
        return self.request.model or ""


def stored_file(settings: Settings, stored: str | None) -> Path | None:
    """The absolute path of a file stored under the studio's home (None for none)."""
    if not stored:
        return None
    return home_path(settings.home, stored)


def brand_for_generation(
    session: Session, actor: Actor, slug: str, roles: tuple[str, ...] = ("marketer",)
) -> tuple[User | None, Brand]:
    """Marketers (or ``roles``) and admins who may read the brand (non-members get NotFoundError)."""
    user = require_role(session, actor, *roles)
    if not isinstance(slug, str) or not slug.strip():
        raise ValidationError("brand", "choose a brand")
    brand, _ = readable_brand(session, actor, slug.strip())
    return user, brand


class Planner:
    """Turns a :class:`GenerateInput` (the user's words: ``cfg``, ``steps``) into a :class:`Plan` whose
    request speaks diffusers' (``guidance_scale``, ``num_inference_steps``).

    ``engine`` returns the process's engine (built on first use); ``template_problem(engine, template,
    model)`` says why a template cannot be used with a model (None when it can)."""

    def __init__(
        self,
        settings: Settings,
        engine: Callable[[], Engine],
        template_problem: Callable[[Engine, ControlTemplate, str], str | None],
    ) -> None:
        self._settings = settings
        self._engine = engine
        self._template_problem = template_problem

    # ------------------------------------------------------------------------------ about the model

    def families(self) -> Families:
        """Family lookups through the engine's cache of resolved models."""
        return Families(lambda ref: self._engine().model_info(ref).family)

    def limits(self, model: str, families: Families | None = None) -> tuple[str, FamilyLimits]:
        """The limits-table key of ``model`` (``embedded``, ``sd1``, …) and what one request may ask of it."""
        key = family_key(model, (families or self.families())(model))
        return key, self._settings.limits_for(key)

    def fits(self, model: str) -> Callable[[str], bool]:
        """Whether the model's text encoders read all of a prompt (a model that cannot be read: yes, and
        generation says what is wrong with it)."""

        def fits(text: str) -> bool:
            try:
                return not self._engine().count_tokens(text, model).truncated
            except StudioError:
                return True

        return fits

    def recommended_guidance(self, base_model: str) -> dict[str, Any] | None:
        """The guidance the model's build recommends (the embedded model's colour-stable FDG), the default of
        a brand that sets none; None for other models, and when the model cannot be read."""
        try:
            return self._engine().model_info(base_model).recommended_guidance
        except StudioError:
            return None

    def samplers(self, base_model: str) -> tuple[str, ...]:
        """The samplers the brand's model can use (all known names when the model cannot be read)."""
        try:
            return tuple(self._engine().model_info(base_model).samplers)
        except StudioError:
            return SAMPLERS

    def template_problem(self, template: ControlTemplate, model: str) -> str | None:
        """Why ``template`` cannot be used with ``model`` (None when it can)."""
        return self._template_problem(self._engine(), template, model)

    # -------------------------------------------------------------------------------------- the plan

    def plan(
        self,
        session: Session,
        actor: Actor,
        request: GenerateInput,
        *,
        caps: bool = True,
        roles: tuple[str, ...] = ("marketer",),
    ) -> Plan:
        """Everything one request needs from the database, with every refusal before it runs: the brand
        and role (``roles`` or admin), the prompts' lengths and banned terms, the size (a preset, or custom
        where allowed), the numbers' ranges and, with ``caps``, the caps of the model's family."""
        user, brand = brand_for_generation(session, actor, request.brand, roles)
        prompt = request.prompt if isinstance(request.prompt, str) else ""
        if not prompt.strip():
            raise ValidationError("prompt", "must not be empty")
        negative = request.negative_prompt if isinstance(request.negative_prompt, str) else ""
        for problem in prompt_problems(prompt, negative):
            raise problem
        refuse_banned(brand, prompt)
        model = effective_model(brand, self._settings)
        loras = self._loras(brand, request.loras, self.families().lora_misfits(brand, self._settings))
        templates = self._templates(brand, request.templates, model)
        width, height = requested_size(session, actor, brand, request)
        trigger_words = [w for lora in loras for w in lora.trigger_words]
        brand_words = [w for adapter in brand.adapters for w in adapter.trigger_words]
        author = author_id(session, user)
        sent = assemble_prompt(brand.style_template, prompt, trigger_words, brand_words, self.fits(model))
        engine_request = GenerationRequest(  # the user's words (cfg, steps) become diffusers' here, once
            prompt=sent,
            negative_prompt=merge_negative(brand.negative_prompt, negative),
            guidance_scale=brand.default_cfg if request.cfg is None else request.cfg,
            num_inference_steps=brand.default_steps if request.steps is None else request.steps,
            seed=request.seed,
            sampler=request.sampler or brand.default_sampler,
            width=width,
            height=height,
            batch_size=request.batch_size,
            loras=tuple(
                LoraSpec(lora.adapter, lora.path, lora.sha256, lora.weight, str(lora.version_id))
                for lora in loras
            ),
            prompt_typed=prompt,
            model=model,
            guidance=self._guidance(brand, request, model),
        )
        plan = Plan(
            user_id=author,
            brand_id=brand.id,
            brand_slug=brand.slug,
            palette=tuple(brand.palette),
            palette_threshold=brand.palette_threshold,
            prompt=prompt,
            negative_prompt=negative,
            request=engine_request,
            loras=loras,
            templates=templates,
        )
        if caps:  # a number out of its absolute range is the engine's to name (the caps are within them)
            numbers = {problem.field for problem in number_problems(request)}
            for problem in self.cap_problems(plan):
                if problem.field not in numbers:
                    raise problem
        return plan

    def cap_problems(self, plan: Plan) -> list[ValidationError]:
        """What of ``plan`` is over the caps of its model's family (size: the model's default when none)."""
        family, limits = self.limits(plan.base_model)
        request = plan.request
        size: tuple[int, int] | None = None
        if request.width is not None and request.height is not None:
            size = (request.width, request.height)
        else:
            try:
                info = self._engine().model_info(plan.base_model)
                size = (request.width or info.default_width, request.height or info.default_height)
            except StudioError:
                size = None  # a model that cannot be read: generation says so
        return cap_problems(limits, family, request.num_inference_steps, request.batch_size, size)

    # ------------------------------------------------------------------------------------ its parts

    def _loras(
        self, brand: Brand, weights: Mapping[str, float], misfits: Mapping[str, str]
    ) -> tuple[LoraUse, ...]:
        """The LoRAs to use; one that does not fit the brand's model (``misfits``: name → reason) is left
        out, or refused when asked for by name with a weight above 0."""
        adapters = {a.name: a for a in brand.adapters}
        for name in weights:
            if name not in adapters:
                known = ", ".join(sorted(adapters)) or "none"
                raise ValidationError("loras", f"brand {brand.slug} has no LoRA {name!r} (it has: {known})")
        uses = []
        for adapter in brand.adapters:
            weight = weights.get(adapter.name, adapter.default_weight)
            weight = lora_weight(adapter.name, weight)
            version = adapter.active_version
            if weight == 0.0 or version is None:
                if adapter.name in weights and version is None and weight > 0:
                    raise ValidationError(f"loras.{adapter.name}", "has no file yet (train or upload one)")
                continue
            reason = misfits.get(adapter.name)
            if reason is not None:
                if adapter.name in weights:
                    raise ValidationError(
                        f"loras.{adapter.name}", f"LoRA {adapter.name} cannot be used: {reason}"
                    )
                continue
            uses.append(self._lora_use(adapter, version, weight))
        return tuple(uses)

    def _lora_use(self, adapter: LoraAdapter, version: LoraVersion, weight: float) -> LoraUse:
        path = stored_file(self._settings, version.file_path)
        if path is None or not path.is_file():
            raise NotFoundError(f"LoRA {adapter.name}: its file {version.file_path} is missing")
        return LoraUse(
            adapter=adapter.name,
            version_id=version.id,
            sha256=version.sha256,
            path=path,
            weight=weight,
            trigger_words=tuple(adapter.trigger_words),
        )

    def _templates(self, brand: Brand, names: Sequence[str], model: str) -> tuple[TemplateUse, ...]:
        by_name = {t.name: t for t in brand.templates}
        uses = []
        for name in dict.fromkeys(n for n in names if n):
            template = by_name.get(name)
            if template is None:
                known = ", ".join(sorted(by_name)) or "none"
                raise ValidationError(
                    "templates", f"brand {brand.slug} has no template {name!r} (it has: {known})"
                )
            problem = self.template_problem(template, model)
            if problem is not None:
                raise ValidationError("templates", f"template {name} cannot be used: {problem}")
            uses.append(
                TemplateUse(
                    template_id=template.id,
                    name=template.name,
                    preprocessor=template.preprocessor,
                    source_path=stored_file(self._settings, template.source_image_path),
                    control_path=stored_file(self._settings, template.control_image_path),
                    scale=template.conditioning_scale,
                    start=template.guidance_start,
                    end=template.guidance_end,
                    controlnet=template.controlnet_model,
                )
            )
        return tuple(uses)

    def _guidance(self, brand: Brand, request: GenerateInput, model: str) -> Guidance | None:
        """The request's guidance (checked), else the brand's default, else the model's recommendation
        (:meth:`recommended_guidance`); a default does not apply to a FLUX model (distilled guidance: the
        engine would refuse it), a request's own is refused there. None is plain CFG."""
        chosen: Mapping[str, Any] | None = request.guidance
        if chosen is None:
            chosen = brand.default_guidance or self.recommended_guidance(model)
            if chosen and self.families()(model) == "flux":
                return None
        else:
            chosen = compact_guidance(Guidance.from_dict(chosen))
        return None if chosen is None else Guidance.from_dict(chosen)


def author_id(session: Session, user: User | None) -> int:
    """The author's id; the system actor (CLI) generates as the first admin."""
    if user is not None:
        return user.id
    from studio.db.models import UserRole

    first_admin = session.scalar(
        select(User.id).join(UserRole).where(UserRole.role == "admin").order_by(User.id).limit(1)
    )
    if first_admin is None:
        raise ValidationError("user", "no user to record as the author; pass --user NAME")
    return int(first_admin)
