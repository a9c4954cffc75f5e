"""Brand-aware generation: permission, brand application, the engine run, PNG files and database rows.

``GenerationService.generate(actor, GenerateInput(...))`` checks that the actor is a marketer or an admin who
may read the brand, applies the brand (style template around the prompt, trigger words of the LoRAs used,
the brand's negative prompt merged with the user's, banned terms refused, size presets), runs the engine
(progress and cancel pass through), writes each image atomically as a PNG that carries its recipe, then adds
the rows in one transaction; if that transaction fails the files are removed again (InvokeAI's
``images_default`` pattern). Nothing is written when the input is refused.

The engine (torch, diffusers) is built on first use by :class:`EngineProvider`, so importing this module and
building the services stays light.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from studio.config import Settings
from studio.db.generation_models import Generation
from studio.db.models import Brand, ControlTemplate, LoraAdapter, LoraVersion, User
from studio.engine.guidance_settings import Guidance
from studio.engine.limits import FamilyLimits, family_key
from studio.errors import ModelError, NotFoundError, StudioError, ValidationError
from studio.services import audit
from studio.services.banned_terms import banned_term_in
from studio.services.brand_files import SAMPLERS, compact_guidance
from studio.services.brand_models import Families, effective_model
from studio.services.generation_plan import (  # noqa: F401 (GenerateInput etc. are imported from here too)
    MAX_LORA_WEIGHT,
    MIN_LORA_WEIGHT,
    GenerateInput,
    LoraUse,
    Plan,
    TemplateUse,
    assemble_prompt,
    cap_problems,
    lora_weight,
    merge_negative,
    number_problems,
    prompt_problems,
)
from studio.services.generation_rules import refuse_banned, requested_size
from studio.services.generation_save import (  # noqa: F401 (ImageView etc. are imported from here too)
    GenerationResult,
    GenerationSaver,
    ImageView,
    png_bytes,
)
from studio.services.permissions import readable_brand, require_role
from studio.services.views import Actor
from studio.services.visibility import visible_image
from studio.storage import ContentStore, home_path, stored_path

if TYPE_CHECKING:  # pragma: no cover

    from studio.engine.generate import Engine
    from studio.engine.request import GenerationRequest

ProgressCallback = Callable[[int, int], None]

#: the CFG scales a one-click sweep uses when none are given
DEFAULT_SWEEP_SCALES: tuple[float, ...] = (2.0, 4.0, 7.0, 10.0, 14.0)
#: ControlNet used with the embedded model's templates
EMBEDDED_PREFIX = "embedded:"
MIN_CONTROL_SIDE = 64


class EngineProvider:
    """Builds the one :class:`~studio.engine.generate.Engine` of the process on first use (thread-safe)."""

    def __init__(self, settings: Settings, factory: Callable[[], Engine] | None = None) -> None:
        self._settings = settings
        self._factory = factory
        self._engine: Engine | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def get(self) -> Engine:
        with self._lock:
            if self._engine is None:
                if self._factory is not None:
                    self._engine = self._factory()
                else:
                    from studio.engine.generate import Engine

                    self._engine = Engine(self._settings.base_model, self._settings.device)
            return self._engine


# ------------------------------------------------------------------------------------------------- views


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
    #: the brand's default guidance (non-default Guidance fields); None = plain CFG
    default_guidance: dict[str, Any] | None = None


def control_map_size(info: Any) -> tuple[int, int]:
    """Control maps are made at the model's default size, at least 64 a side (controlnet-aux rounds its
    working size to multiples of 64); the engine fits them to each output size."""
    scale = max(1.0, MIN_CONTROL_SIDE / min(info.default_width, info.default_height))
    return round(info.default_width * scale), round(info.default_height * scale)


class GenerationService:
    """Generate, regenerate and preview images for a brand. See the module docstring."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        engines: EngineProvider,
        *,
        controlnets: Mapping[str, str] | None = None,
    ) -> None:
        self._sessions = sessions
        self._settings = settings
        self._engines = engines
        self._controlnets = dict(controlnets or {})
        self._template_store = ContentStore(settings.templates_dir)
        self._controlnet_checks: dict[tuple[str, str], str | None] = {}
        self._saver = GenerationSaver(sessions, settings)

    @property
    def engine(self) -> Engine:
        return self._engines.get()

    # ---------------------------------------------------------------------------------------- reading

    def options(self, actor: Actor, brand: str) -> GenerationOptions:
        """Defaults, sizes, LoRAs and templates of a brand the actor may generate with."""
        with self._sessions() as session:
            _, row = self._brand_for_generation(session, actor, brand)
            model = effective_model(row, self._settings)
            families = self._families()
            template_issues = {t.name: self._template_problem(t, model) for t in row.templates}
            return GenerationOptions(
                brand_slug=row.slug,
                brand_name=row.name,
                default_cfg=row.default_cfg,
                default_steps=row.default_steps,
                default_sampler=row.default_sampler,
                default_guidance=row.default_guidance,
                samplers=self._samplers(model),
                sizes=tuple((p["name"], int(p["width"]), int(p["height"])) for p in row.size_presets),
                default_size=row.default_size,
                loras=tuple(
                    (a.name, a.default_weight, tuple(a.trigger_words))
                    for a in row.adapters
                    if a.active_version is not None
                ),
                templates=tuple(
                    (t.name, self._home_path(t.control_image_path or t.source_image_path))
                    for t in row.templates
                ),
                thumbnails=tuple(  # the source image: a control map (edges on black) reads as a black box
                    (t.name, _thumbnail(self._home_path(t.source_image_path or t.control_image_path)))
                    for t in row.templates
                ),
                base_model=model,
                model_family=families(model),
                lora_issues=tuple(families.lora_misfits(row, self._settings).items()),
                template_issues=tuple((n, why) for n, why in template_issues.items() if why is not None),
                limits=self._limits(model, families)[1],
                allow_custom_sizes=bool(row.allow_custom_sizes),
            )

    def _fits(self, model: str) -> Callable[[str], bool]:
        """Whether the model's text encoders read all of a prompt (a model that cannot be read: yes, and
        generation says what is wrong with it)."""

        def fits(text: str) -> bool:
            try:
                return not self.engine.count_tokens(text, model).truncated
            except StudioError:
                return True

        return fits

    def _limits(self, model: str, families: Families | None = None) -> tuple[str, FamilyLimits]:
        """The limits-table key of ``model`` (``embedded``, ``sd1``, …) and what one request may ask of it."""
        key = family_key(model, (families or self._families())(model))
        return key, self._settings.limits_for(key)

    def _families(self) -> Families:
        """Family lookups through the engine's cache of resolved models."""
        return Families(lambda ref: self.engine.model_info(ref).family)

    def _template_problem(self, template: ControlTemplate, model: str) -> str | None:
        """Why ``template`` cannot be used with ``model``: its ControlNet is for another family, or the model
        has no ControlNet of its own; None when it can."""
        engine = self.engine
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
        if key not in self._controlnet_checks:  # resolving a ControlNet hashes its folder: once per pair
            try:
                engine.check_controlnet(ref, model, field="controlnet")
                self._controlnet_checks[key] = None
            except ValidationError as exc:
                self._controlnet_checks[key] = str(exc).partition(": ")[2]
        return self._controlnet_checks[key]

    def _samplers(self, base_model: str) -> tuple[str, ...]:
        """The samplers the brand's model can use (all known names when the model cannot be read)."""
        try:
            return tuple(self.engine.model_info(base_model).samplers)
        except StudioError:
            return SAMPLERS

    def preview(
        self,
        actor: Actor,
        brand: str,
        prompt: str,
        negative_prompt: str = "",
        loras: Mapping[str, float] | None = None,
    ) -> PromptPreview:
        """The final prompt and negative prompt the user's input becomes (refusals as in :meth:`generate`)."""
        request = GenerateInput(
            brand=brand, prompt=prompt, negative_prompt=negative_prompt, loras=loras or {}
        )
        with self._sessions() as session:
            plan = self._plan(session, actor, request)
        return PromptPreview(
            prompt=plan.final_prompt,
            negative_prompt=plan.final_negative,
            trigger_words=tuple(w for lora in plan.loras for w in lora.trigger_words),
            loras=tuple((lora.adapter, lora.weight) for lora in plan.loras),
        )

    def get_image(self, actor: Actor, image_id: int) -> ImageView:
        """One image the actor may see (the gallery's rule, :mod:`studio.services.visibility`); any other
        id, existing or not, gets the same NotFoundError."""
        with self._sessions() as session:
            image = visible_image(session, actor, image_id)
            return self._saver.image_view(image, image.generation, self._slug(session, image.brand_id))

    # --------------------------------------------------------------------------------------- generate

    def generate(
        self,
        actor: Actor,
        request: GenerateInput,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        """Generate ``request.batch_size`` images, save them with their recipes and return them."""
        with self._sessions() as session:
            plan = self._plan(session, actor, request)
        engine = self.engine
        engine_request = self._engine_request(plan)
        if plan.templates:  # a missing control map is made and stored: refuse bad input before that
            engine_request = self._with_controls(engine, plan, engine.validate(engine_request))
        # otherwise the engine validates everything before it runs, and files are only written after it
        return self._run_and_save(actor, plan, engine_request, progress, cancel)

    def _run_and_save(
        self,
        actor: Actor,
        plan: Plan,
        request: GenerationRequest,
        progress: ProgressCallback | None,
        cancel: threading.Event | None,
    ) -> GenerationResult:
        """Run the engine and save the images; a cancel saves the images finished before it (and raises
        when there are none)."""
        from studio.engine.generate import GenerationCancelled

        try:
            images = self.engine.generate(request, progress=progress, cancel=cancel)
        except GenerationCancelled as cancelled:
            if not cancelled.images:
                raise
            result = self._saver.save(actor, plan, request, list(cancelled.images))
            return replace(result, cancelled=True, requested=cancelled.requested)
        result = self._saver.save(actor, plan, request, images)
        return replace(result, requested=len(images))

    def check(self, actor: Actor, request: GenerateInput) -> tuple[StudioError, ...]:
        """What is wrong with ``request``, without generating: every number out of range, then the first
        other refusal (brand, permission, prompt, banned term, size, LoRAs, templates, sampler). Empty when
        :meth:`generate` would run it. Each ValidationError names its field."""
        problems: list[StudioError] = list(number_problems(request))
        numbers = {p.field for p in problems if isinstance(p, ValidationError)}
        try:
            with self._sessions() as session:
                plan = self._plan(session, actor, request, caps=False)
            caps = [p for p in self._cap_problems(plan) if p.field not in numbers]
            problems += caps
            if not problems:
                self.engine.validate(self._engine_request(plan))
        except ValidationError as problem:
            if problem.field not in numbers:
                problems.append(problem)
        except StudioError as problem:
            problems.append(problem)
        return tuple(problems)

    def check_prompt(
        self,
        actor: Actor,
        brand: str,
        prompt: str,
        loras: Mapping[str, float] | None = None,
    ) -> PromptCheck:
        """The prompt as it would be sent for ``brand`` and what of it the brand's model reads (see
        :class:`PromptCheck`). An empty prompt or a banned term is reported, not refused; the brand and the
        role are checked as in :meth:`generate`."""
        with self._sessions() as session:
            _, row = self._brand_for_generation(session, actor, brand)
            model = effective_model(row, self._settings)
            weights = {name: w for name, w in (loras or {}).items() if isinstance(w, int | float)}
            used = [
                w
                for adapter in row.adapters
                if adapter.active_version is not None and weights.get(adapter.name, adapter.default_weight)
                for w in adapter.trigger_words
            ]
            brand_words = [w for adapter in row.adapters for w in adapter.trigger_words]
            text = prompt if isinstance(prompt, str) else ""
            too_long = prompt_problems(text, "")
            if too_long:  # not counted: the prompt is refused before anything reads it
                return PromptCheck("", 0, 0, "", (), None, (), None, problem=str(too_long[0]))
            sent = assemble_prompt(row.style_template, text, used, brand_words, self._fits(model))
            banned = banned_term_in(text, row.banned_terms) if text.strip() else None
        from studio.engine.tokens import unknown_words

        engine = self.engine
        known = engine.known_words(model)
        triggers = tuple(dict.fromkeys(w for w in brand_words if w.lower() in sent.lower()))
        try:
            count = engine.count_tokens(sent, model)
        except StudioError as exc:  # a model that is not there: generation will say so too
            return PromptCheck(sent, 0, 0, "", triggers, known, (), banned, problem=str(exc))
        return PromptCheck(
            prompt=sent,
            tokens=count.tokens,
            limit=count.limit,
            cut=count.cut,
            trigger_words=triggers,
            known_words=known,
            unknown_words=unknown_words(text, known, tuple(brand_words)) if known else (),
            banned_term=banned,
        )

    def cfg_sweep(
        self,
        actor: Actor,
        request: GenerateInput,
        scales: Sequence[float] = DEFAULT_SWEEP_SCALES,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[GenerationResult]:
        """The same prompt and seed at several CFG scales (one image each), for side-by-side comparison."""
        if not scales or len(scales) > 8:
            raise ValidationError("scales", "give 1 to 8 CFG scales")
        seed = request.seed
        if seed is None:
            import secrets

            seed = secrets.randbelow(2**32)
        from studio.engine.generate import GenerationCancelled

        results: list[GenerationResult] = []
        for index, scale in enumerate(scales):
            one = replace(request, cfg=float(scale), seed=seed, batch_size=1)

            def step(current: int, total: int, _index: int = index) -> None:
                if progress is not None:
                    progress(_index * total + current, total * len(scales))

            try:
                results.append(self.generate(actor, one, progress=step, cancel=cancel))
            except GenerationCancelled:
                if not results:
                    raise
                results[-1] = replace(results[-1], cancelled=True)  # the scales done so far are kept
                break
        return results

    def regenerate(
        self,
        actor: Actor,
        image_id: int,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        """Make an image the actor may see (as :meth:`get_image`) again from its stored recipe (same machine
        → same pixels); saved as a new image. Only marketers and admins generate.

        A recipe whose LoRA version, control image or base model is no longer present fails with an error
        naming it. The brand's rules of today apply as in :meth:`generate`: prompt lengths, banned terms
        and the caps of the model's family; the size is the recipe's (it was accepted when the image was
        made), so it need not be one of the brand's presets.
        """
        from studio.engine.recipe import Recipe
        from studio.engine.request import request_from_recipe

        with self._sessions() as session:
            image = visible_image(session, actor, image_id)
            user = require_role(session, actor, "marketer")
            generation = image.generation
            brand = session.get(Brand, image.brand_id)
            assert brand is not None
            for problem in prompt_problems(generation.prompt, generation.negative_prompt):
                raise problem
            refuse_banned(brand, generation.prompt)
            recipe = Recipe.from_dict({**generation.recipe, "seed": image.seed})
            lora_paths = self._lora_paths(session, recipe)
            control_images = self._control_images(session, generation)
            templates = tuple(
                TemplateUse(
                    template_id=t.template_id or 0,
                    name=t.template_name,
                    preprocessor="",
                    source_path=None,
                    control_path=None,
                    scale=t.conditioning_scale,
                    start=t.guidance_start,
                    end=t.guidance_end,
                )
                for t in generation.templates
            )
            plan = Plan(
                user_id=user.id if user is not None else generation.user_id,
                brand_id=brand.id,
                brand_slug=brand.slug,
                base_model=recipe.base_model,
                palette=tuple(brand.palette),
                palette_threshold=brand.palette_threshold,
                prompt=generation.prompt,
                negative_prompt=generation.negative_prompt,
                final_prompt=recipe.prompt,
                final_negative=recipe.negative_prompt,
                cfg=recipe.guidance_scale,
                steps=recipe.steps,
                sampler=recipe.sampler,
                seed=recipe.seed,
                width=recipe.width,
                height=recipe.height,
                batch_size=1,
                loras=tuple(
                    LoraUse(
                        adapter=lora.adapter_name,
                        version_id=lora.lora_version_id or 0,
                        sha256=lora.sha256,
                        path=Path(lora_paths.get(lora.sha256, "")),
                        weight=lora.weight,
                        trigger_words=(),
                    )
                    for lora in generation.loras
                ),
                templates=templates,
            )
        for problem in self._cap_problems(plan):
            raise problem
        engine_request = request_from_recipe(recipe, lora_paths, control_images)
        engine = self.engine
        try:
            engine.resolve(recipe.base_model, recipe.base_model_revision)
        except StudioError as exc:
            raise ModelError(
                f"the recipe's base model {recipe.base_model!r} is not available: {exc}"
            ) from None
        return self._run_and_save(actor, plan, engine_request, progress, cancel)

    def pull_model(self, actor: Actor, repo_id: str, revision: str | None = None) -> Path:
        """Download a hub model's safetensors, configs and tokenizer files (admins); fails fast offline."""
        from studio.engine.models import pull_model

        with self._sessions() as session:
            require_role(session, actor)
        path = pull_model(repo_id, revision=revision)
        with self._sessions.begin() as session:
            audit.record(session, actor, "model.pull", repo_id, revision=revision, path=str(path))
        return path

    # ----------------------------------------------------------------------------------- planning

    @staticmethod
    def _brand_for_generation(session: Session, actor: Actor, slug: str) -> tuple[User | None, Brand]:
        """Marketers and admins who may read the brand (non-members get NotFoundError)."""
        user = require_role(session, actor, "marketer")
        if not isinstance(slug, str) or not slug.strip():
            raise ValidationError("brand", "choose a brand")
        brand, _ = readable_brand(session, actor, slug.strip())
        return user, brand

    def _plan(self, session: Session, actor: Actor, request: GenerateInput, *, caps: bool = True) -> Plan:
        """Everything one request needs from the database, with every refusal before it runs: the brand
        and role, the prompts' lengths and banned terms, the size (a preset, or custom where allowed), the
        numbers' ranges and, with ``caps``, the caps of the model's family."""
        user, brand = self._brand_for_generation(session, actor, request.brand)
        prompt = request.prompt if isinstance(request.prompt, str) else ""
        if not prompt.strip():
            raise ValidationError("prompt", "must not be empty")
        negative = request.negative_prompt if isinstance(request.negative_prompt, str) else ""
        for problem in prompt_problems(prompt, negative):
            raise problem
        refuse_banned(brand, prompt)
        model = effective_model(brand, self._settings)
        loras = self._loras(brand, request.loras, self._families().lora_misfits(brand, self._settings))
        templates = self._templates(brand, request.templates, model)
        width, height = requested_size(session, actor, brand, request)
        trigger_words = [w for lora in loras for w in lora.trigger_words]
        brand_words = [w for adapter in brand.adapters for w in adapter.trigger_words]
        plan = Plan(
            user_id=self._user_id(session, user),
            brand_id=brand.id,
            brand_slug=brand.slug,
            base_model=model,
            palette=tuple(brand.palette),
            palette_threshold=brand.palette_threshold,
            prompt=prompt,
            negative_prompt=negative,
            final_prompt=assemble_prompt(
                brand.style_template, prompt, trigger_words, brand_words, self._fits(model)
            ),
            final_negative=merge_negative(brand.negative_prompt, negative),
            cfg=brand.default_cfg if request.cfg is None else request.cfg,
            steps=brand.default_steps if request.steps is None else request.steps,
            sampler=request.sampler or brand.default_sampler,
            guidance=self._guidance(brand, request, model),
            seed=request.seed,
            width=width,
            height=height,
            batch_size=request.batch_size,
            loras=loras,
            templates=templates,
        )
        if caps:  # a number out of its absolute range is the engine's to name (the caps are within them)
            numbers = {problem.field for problem in number_problems(request)}
            for problem in self._cap_problems(plan):
                if problem.field not in numbers:
                    raise problem
        return plan

    def _cap_problems(self, plan: Plan) -> list[ValidationError]:
        """What of ``plan`` is over the caps of its model's family (size: the model's default when none)."""
        family, limits = self._limits(plan.base_model)
        size: tuple[int, int] | None = None
        if plan.width is not None and plan.height is not None:
            size = (plan.width, plan.height)
        else:
            try:
                info = self.engine.model_info(plan.base_model)
                size = (plan.width or info.default_width, plan.height or info.default_height)
            except StudioError:
                size = None  # a model that cannot be read: generation says so
        return cap_problems(limits, family, plan.steps, plan.batch_size, size)

    @staticmethod
    def _user_id(session: Session, user: User | None) -> int:
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
        path = self._home_path(version.file_path)
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
            problem = self._template_problem(template, model)
            if problem is not None:
                raise ValidationError("templates", f"template {name} cannot be used: {problem}")
            uses.append(
                TemplateUse(
                    template_id=template.id,
                    name=template.name,
                    preprocessor=template.preprocessor,
                    source_path=self._home_path(template.source_image_path),
                    control_path=self._home_path(template.control_image_path),
                    scale=template.conditioning_scale,
                    start=template.guidance_start,
                    end=template.guidance_end,
                    controlnet=template.controlnet_model,
                )
            )
        return tuple(uses)

    # ------------------------------------------------------------------------------------- engine side

    def _guidance(self, brand: Brand, request: GenerateInput, model: str) -> dict[str, Any] | None:
        """The request's guidance (checked), else the brand's default; a brand default does not apply to
        a FLUX model (distilled guidance: the engine would refuse it), a request's own is refused there."""
        if request.guidance is not None:
            return compact_guidance(Guidance.from_dict(request.guidance))
        if brand.default_guidance and self._families()(model) == "flux":
            return None
        return brand.default_guidance or None

    def _engine_request(self, plan: Plan) -> GenerationRequest:
        from studio.engine.request import GenerationRequest, LoraSpec

        return GenerationRequest(
            prompt=plan.final_prompt,
            negative_prompt=plan.final_negative,
            guidance_scale=plan.cfg,
            num_inference_steps=plan.steps,
            seed=plan.seed,
            sampler=plan.sampler,
            width=plan.width,
            height=plan.height,
            batch_size=plan.batch_size,
            loras=tuple(
                LoraSpec(lora.adapter, lora.path, lora.sha256, lora.weight, str(lora.version_id))
                for lora in plan.loras
            ),
            prompt_typed=plan.prompt,
            model=plan.base_model,
            guidance=None if plan.guidance is None else Guidance.from_dict(plan.guidance),
        )

    def _with_controls(self, engine: Engine, plan: Plan, request: GenerationRequest) -> GenerationRequest:
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
        raise ModelError(f"no ControlNet is configured for base model {base_model!r}")

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

    # ------------------------------------------------------------------------------------------- saving

    # ---------------------------------------------------------------------------------------- helpers

    def _lora_paths(self, session: Session, recipe: Any) -> dict[str, str | Path]:
        paths: dict[str, str | Path] = {}
        for entry in recipe.loras:
            for version in session.scalars(select(LoraVersion).where(LoraVersion.sha256 == entry.sha256)):
                path = self._home_path(version.file_path)
                if path is not None and path.is_file():
                    paths[entry.sha256] = path
                    break
        return paths

    def _control_images(self, session: Session, generation: Generation) -> dict[str, str | Path]:
        images: dict[str, str | Path] = {}
        for used in generation.templates:
            template = session.get(ControlTemplate, used.template_id) if used.template_id else None
            path = self._home_path(template.control_image_path) if template is not None else None
            if path is not None and path.is_file():
                images[used.control_image_sha256] = path
        return images

    @staticmethod
    def _slug(session: Session, brand_id: int) -> str:
        return session.scalar(select(Brand.slug).where(Brand.id == brand_id)) or ""

    def _home_path(self, stored: str | None) -> Path | None:
        if not stored:
            return None
        return home_path(self._settings.home, stored)



def _thumbnail(path: Path | None, side: int = 128) -> Any:
    """A small RGB copy of an image file, or None when the file is missing or unreadable."""
    if path is None or not path.is_file():
        return None
    from PIL import Image as PILImageModule

    try:
        with PILImageModule.open(path) as opened:
            image = opened.convert("RGB")
    except OSError:
        return None
    image.thumbnail((side, side))
    return image
