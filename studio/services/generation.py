"""Brand-aware generation, the entry: permission, then plan → engine → save.

``GenerationService.generate(actor, GenerateInput(...))`` checks that the actor is a marketer or an admin who
may read the brand, plans the request (:mod:`~studio.services.generation_plan`: the brand applied, every
refusal before anything runs), adds the templates' control maps (:mod:`~studio.services.generation_controls`),
runs the engine (progress and cancel pass through) and saves the images
(:mod:`~studio.services.generation_save`: PNG files that carry their recipes, then the rows in one
transaction; the files are removed again if it fails). Nothing is written when the input is refused.
:meth:`GenerationService.regenerate` plans from a stored recipe
(:mod:`~studio.services.generation_regenerate`).

The engine (torch, diffusers) is built on first use by :class:`EngineProvider`, so importing this module and
building the services stays light.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from studio.config import Settings
from studio.db.models import Brand
from studio.engine.guidance_settings import Guidance  # noqa: F401 (the ui reads it from here)
from studio.engine.request import ProgressCallback
from studio.errors import ModelError, StudioError, ValidationError
from studio.services import audit
from studio.services.banned_terms import banned_term_in
from studio.services.brand_models import effective_model, model_name
from studio.services.generation_controls import ControlMaps
from studio.services.generation_input import (  # noqa: F401 (GenerateInput is imported from here too)
    GenerateInput,
    number_problems,
    prompt_problems,
)
from studio.services.generation_jobs import GenerationQueue
from studio.services.generation_plan import Plan, Planner, brand_for_generation, stored_file
from studio.services.generation_prompt import assemble_prompt
from studio.services.generation_regenerate import recipe_plan
from studio.services.generation_save import (  # noqa: F401 (ImageView etc. are imported from here too)
    GenerationResult,
    GenerationSaver,
    ImageView,
)
from studio.services.generation_views import (  # noqa: F401 (the ui reads them from here)
    GenerationOptions,
    PromptCheck,
    PromptPreview,
)
from studio.services.permissions import require_role
from studio.services.views import Actor
from studio.services.visibility import visible_image

if TYPE_CHECKING:  # pragma: no cover
    from studio.engine.generate import Engine
    from studio.engine.request import GenerationRequest
    from studio.services.editing import EditingService


#: the CFG scales a one-click sweep uses when none are given
DEFAULT_SWEEP_SCALES: tuple[float, ...] = (2.0, 4.0, 7.0, 10.0, 14.0)


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

                    self._engine = Engine(
                        self._settings.base_model,
                        self._settings.device,
                        batch_invariant=self._settings.invariant_kernels,
                    )
            return self._engine


class GenerationService:
    """Generate, regenerate and preview images for a brand. See the module docstring."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        engines: EngineProvider,
        *,
        controlnets: Mapping[str, str] | None = None,
        edits: EditingService | None = None,
    ) -> None:
        self._edits = edits  # regenerate hands an edit's recipe to the editing service
        self._sessions = sessions
        self._settings = settings
        self._engines = engines
        self._controls = ControlMaps(sessions, settings, controlnets)
        self._planner = Planner(settings, engines.get, self._controls.template_problem)
        self._saver = GenerationSaver(sessions, settings)
        #: STUDIO_GENERATION=queue: requests become jobs that workers run (the web app loads no model)
        queued = settings.generation == "queue"
        self._queued = GenerationQueue(sessions, settings, self._saver) if queued else None

    @property
    def engine(self) -> Engine:
        return self._engines.get()

    def controlnet_for(self, engine: Engine, base_model: str) -> str:
        """The ControlNet used with ``base_model``'s templates (see :class:`ControlMaps`)."""
        return self._controls.controlnet_for(engine, base_model)

    # ---------------------------------------------------------------------------------------- reading

    def options(self, actor: Actor, brand: str) -> GenerationOptions:
        """Defaults, sizes, LoRAs and templates of a brand the actor may generate with."""
        with self._sessions() as session:
            _, row = brand_for_generation(session, actor, brand)
            model = effective_model(row, self._settings)
            planner = self._planner
            families = planner.families()
            template_issues = {t.name: planner.template_problem(t, model) for t in row.templates}
            recommended = planner.recommended_guidance(model)
            settings = self._settings
            return GenerationOptions(
                brand_slug=row.slug,
                brand_name=row.name,
                default_cfg=row.default_cfg,
                default_steps=row.default_steps,
                default_sampler=row.default_sampler,
                default_guidance=row.default_guidance or recommended,
                guidance_from_model=not row.default_guidance and bool(recommended),
                samplers=planner.samplers(model),
                sizes=tuple((p["name"], int(p["width"]), int(p["height"])) for p in row.size_presets),
                default_size=row.default_size,
                loras=tuple(
                    (a.name, a.default_weight, tuple(a.trigger_words))
                    for a in row.adapters
                    if a.active_version is not None
                ),
                templates=tuple(
                    (t.name, stored_file(settings, t.control_image_path or t.source_image_path))
                    for t in row.templates
                ),
                thumbnails=tuple(  # the source image: a control map (edges on black) reads as a black box
                    (t.name, _thumbnail(stored_file(settings, t.source_image_path or t.control_image_path)))
                    for t in row.templates
                ),
                base_model=model,
                model_family=families(model),
                lora_issues=tuple(families.lora_misfits(row, self._settings).items()),
                template_issues=tuple((n, why) for n, why in template_issues.items() if why is not None),
                limits=planner.limits(model, families)[1],
                allow_custom_sizes=bool(row.allow_custom_sizes),
            )

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
            plan = self._planner.plan(session, actor, request)
        return PromptPreview(
            prompt=plan.request.prompt,
            negative_prompt=plan.request.negative_prompt,
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
            plan = self._planner.plan(session, actor, request)
        engine = self.engine
        engine_request = plan.request
        if plan.templates:  # a missing control map is made and stored: refuse bad input before that
            engine_request = self._controls.with_controls(engine, plan, engine.validate(engine_request))
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
        if self._queued is not None:  # a worker runs it: the seed is fixed first, so a rerun is the same
            job_id = self._queued.submit(actor, plan, self.engine.validate(request))
            return self._queued.wait(job_id, progress, cancel)
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
                plan = self._planner.plan(session, actor, request, caps=False)
            caps = [p for p in self._planner.cap_problems(plan) if p.field not in numbers]
            problems += caps
            if not problems:
                self.engine.validate(plan.request)
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
            _, row = brand_for_generation(session, actor, brand)
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
            sent = assemble_prompt(row.style_template, text, used, brand_words, self._planner.fits(model))
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
        with self._sessions() as session:
            plan, recipe = recipe_plan(session, self._settings, self._controls, actor, image_id)
        for problem in self._planner.cap_problems(plan):
            raise problem
        engine = self.engine
        try:
            engine.resolve(recipe.base_model, recipe.base_model_revision)
        except StudioError as exc:
            raise ModelError(
                f"the recipe's base model {model_name(recipe.base_model)!r} is not available: {exc}"
            ) from None
        if recipe.edit is not None:  # an edit: made again from its stored source (and mask)
            if self._edits is None:
                raise ModelError(f"image {image_id} is an edit; this studio was built without editing")
            return self._edits.run_recipe(actor, plan, recipe, progress, cancel)
        return self._run_and_save(actor, plan, plan.request, progress, cancel)

    def pull_model(self, actor: Actor, repo_id: str, revision: str | None = None) -> Path:
        """Download a hub model's safetensors, configs and tokenizer files (admins); fails fast offline."""
        from studio.engine.models import pull_model

        with self._sessions() as session:
            require_role(session, actor)
        path = pull_model(repo_id, revision=revision)
        with self._sessions.begin() as session:
            audit.record(session, actor, "model.pull", repo_id, revision=revision, path=str(path))
        return path

    @staticmethod
    def _slug(session: Session, brand_id: int) -> str:
        return session.scalar(select(Brand.slug).where(Brand.id == brand_id)) or ""


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
