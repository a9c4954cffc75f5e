"""Editing images under the brand's rules (issue 19): image-to-image, inpainting, expand, upscale, lineage.

API (each call reads permissions from the database; ``actor`` as in every service)::

    editing.edit(actor, EditInput("inpaint", image_id=7, mask=png_bytes, prompt="a blue circle"))
        -> EditView                      # a new image, pending review, with its parent and edit
    editing.check(actor, EditInput(...)) -> StudioError | None   # the refusal edit() would give
    editing.expand_to_all_presets(actor, EditInput("expand", image_id=7))
        -> CampaignResult                # one image per size preset of the brand, sharing a group id
    editing.regenerate(actor, image_id) -> GenerationResult   # an edit made again, pixel for pixel
    editing.regenerate_recipe(actor, recipe, brand, name) -> GenerationResult  # from a PNG's recipe alone
    editing.lineage(actor, image_id) -> Lineage              # ancestors, children, campaign group
    editing.group(actor, group_id) -> tuple[EditView, ...]
    editing.edit_images(actor, image_id) -> (source, mask)   # the stored PIL images an edit started from
    editing.mark_region(actor, image_id, mask, comment) -> RegionView   # reviewers mark what to fix
    editing.regions(actor, image_id) -> tuple[RegionView, ...]
    editing.region_mask(actor, region_id) -> PIL image       # "Fix region": EditInput(region_id=...)

Rules: a marketer (or an admin) edits an image they may see (their own, or an approved one: the gallery's
rule, :mod:`studio.services.visibility`); a reviewer too when ``STUDIO_REVIEWERS_MAY_EDIT=1``. The brand's
planner (:class:`~studio.services.generation_plan.Planner`) applies its rules as for generating: banned terms,
prompt lengths, LoRAs, templates, sizes (an expand goes to a preset, or a custom size where allowed) and the
caps of the model's family (checked on the output size); the image is saved like a generated one
(:class:`~studio.services.generation_save.GenerationSaver`: PNG with its recipe, palette score, review status
pending), with its :class:`~studio.db.edit_models.ImageEdit` row in the same transaction. The source and the
mask are stored content-addressed under ``STUDIO_HOME/edits`` (sources/, masks/), so a regenerate needs
neither the parent's file nor the upload. With ``STUDIO_GENERATION=queue`` an edit is queued as a job
that a worker with the shared data folder runs (:mod:`studio.services.editing_queue`); the web process then
runs no model.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from studio.config import Settings
from studio.db.edit_models import ImageEdit
from studio.db.generation_models import Generation, Image
from studio.db.models import Brand
from studio.engine.control import load_image
from studio.engine.edit_masks import load_mask
from studio.engine.edit_request import EditRequest
from studio.engine.recipe import Recipe
from studio.engine.request import ProgressCallback
from studio.errors import CancelledError, NotFoundError, PermissionDeniedError, StudioError, ValidationError
from studio.services.editing_files import EditFiles
from studio.services.editing_input import (
    EditInput,
    campaign_presets,
    check_source,
    generate_input,
    output_size,
)
from studio.services.editing_queue import edit_config, lineage_rows
from studio.services.editing_recipe import brand_recipe_plan, require_stored_inputs
from studio.services.editing_regions import RegionMarks
from studio.services.editing_views import CampaignResult, EditView, Lineage, LineageReader, RegionView
from studio.services.generation_controls import ControlMaps
from studio.services.generation_input import cap_problems
from studio.services.generation_jobs import GenerationQueue
from studio.services.generation_plan import Plan, Planner
from studio.services.generation_regenerate import recipe_plan
from studio.services.generation_save import GenerationResult, GenerationSaver, ImageView, png_bytes
from studio.services.permissions import actor_roles
from studio.services.views import Actor
from studio.services.visibility import visible_image

if TYPE_CHECKING:  # pragma: no cover
    from studio.engine.generate import Engine, GeneratedImage
    from studio.services.generation import EngineProvider


class EditingService:
    """Edits, campaigns, lineage and marked regions (see the module docstring)."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, engines: EngineProvider) -> None:
        self._sessions = sessions
        self._settings = settings
        self._engines = engines
        self._controls = ControlMaps(sessions, settings)
        self._planner = Planner(settings, engines.get, self._controls.template_problem)
        self._saver = GenerationSaver(sessions, settings)
        self._files = EditFiles(settings.home)
        self._reader = LineageReader(self._image_view, self._files.path)
        self._regions = RegionMarks(sessions, self._files, self._reader)
        queued = settings.generation == "queue"
        self._queued = GenerationQueue(sessions, settings, self._saver) if queued else None

    # ------------------------------------------------------------------------------------------ edit

    def edit(
        self,
        actor: Actor,
        request: EditInput,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        *,
        group_id: str | None = None,
    ) -> EditView:
        """Make one edited image and save it, pending review. Every refusal (permission, brand rules, bad
        input, each ValidationError naming its field) comes before anything runs or is written."""
        plan, edit_request, source_png, mask_png = self._prepare(actor, request)
        if self._queued is not None:
            return self._queue(actor, plan, edit_request, (source_png, mask_png), group_id, progress, cancel)
        images = self._run(self._engines.get(), edit_request, progress, cancel)
        return self._save(actor, plan, images, source_png, mask_png, group_id)

    def _queue(
        self,
        actor: Actor,
        plan: Plan,
        request: EditRequest,
        pngs: tuple[bytes, bytes | None],
        group_id: str | None,
        progress: ProgressCallback | None,
        cancel: threading.Event | None,
    ) -> EditView:
        """Queue a checked edit (its seed fixed, its source and mask stored) and wait for a worker's image."""
        from studio.engine.edit import plan_edit

        planned = plan_edit(self._engines.get(), request)  # every refusal here, before anything is queued
        if cancel is not None and cancel.is_set():
            raise CancelledError("edit cancelled before it started")
        self._files.put("sources", pngs[0])
        if pngs[1] is not None:
            self._files.put("masks", pngs[1])
        generation = replace(request.generation, seed=planned.prepared.seed)
        total = planned.steps * max(1, len(planned.tiles)) * int(planned.prepared.request.batch_size)
        assert self._queued is not None
        job_id = self._queued.submit(
            actor, plan, generation, edit=edit_config(request, group_id), total_steps=total
        )
        result = self._queued.wait(job_id, progress, cancel)
        return self._view(result.images[0].id, result.images[0].download_path)

    def check(self, actor: Actor, request: EditInput) -> StudioError | None:
        """What is wrong with ``request`` (the first refusal :meth:`edit` would give), without running it;
        None when it would run. A ValidationError names its field."""
        from studio.engine.edit import plan_edit

        try:
            plan_edit(self._engines.get(), self._prepare(actor, request)[1])
        except StudioError as problem:
            return problem
        return None

    def _prepare(self, actor: Actor, request: EditInput) -> tuple[Plan, EditRequest, bytes, bytes | None]:
        """The brand's plan (with the engine's request at the output size), the engine's edit request and
        the source and mask as the PNG bytes to store."""
        kind = check_source(request)
        with self._sessions() as session:
            plan, source, parent_id = self._plan(session, actor, request, kind)
            mask = self._mask(session, actor, request, source.size) if kind == "inpaint" else None
        size = output_size(kind, source.size, plan.request, request.scale)
        generation = replace(plan.request, width=size[0], height=size[1])
        if plan.templates:
            engine = self._engines.get()
            generation = self._controls.with_controls(engine, plan, engine.validate(generation))
        source_png = png_bytes(source)
        mask_png = png_bytes(mask) if mask is not None else None
        edit_request = EditRequest(
            kind=kind,
            source=source,
            generation=generation,
            strength=request.strength,
            mask=mask,
            mask_blur=request.mask_blur,
            anchor=request.anchor,
            scale=request.scale,
            source_sha256=hashlib.sha256(source_png).hexdigest(),
            mask_sha256=hashlib.sha256(mask_png).hexdigest() if mask_png is not None else None,
            parent_image_id=parent_id,
            colour_sigma=request.colour_sigma,
        )
        return replace(plan, request=generation), edit_request, source_png, mask_png

    def expand_to_all_presets(
        self,
        actor: Actor,
        request: EditInput,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> CampaignResult:
        """Expand an approved image to every size preset of its brand that is larger (one image each, the
        same seed, sharing a group id); presets that are not larger are listed in ``skipped``."""
        from studio.engine.generate import GenerationCancelled

        if request.image_id is None:
            raise ValidationError("image_id", "choose an approved gallery image to expand")
        check_source(replace(request, kind="expand", size="", width=None, height=None))
        with self._sessions() as session:
            image = visible_image(session, actor, request.image_id)
            if image.review_status != "approved":
                raise ValidationError(
                    "image_id",
                    f"image {image.id} is {image.review_status}: only approved images are expanded",
                )
            brand = session.get(Brand, image.brand_id)
            assert brand is not None
            todo, skipped = campaign_presets(brand.size_presets, (image.width, image.height))
        if not todo:
            raise ValidationError("size", f"brand {brand.slug} has no size preset larger than the image")
        seed = request.seed if request.seed is not None else int.from_bytes(uuid.uuid4().bytes[:4], "big")
        group_id = uuid.uuid4().hex
        edits: list[EditView] = []
        for index, name in enumerate(todo):

            def step(current: int, total: int, _index: int = index) -> None:
                if progress is not None:
                    progress(_index * total + current, total * len(todo))

            one = replace(request, kind="expand", size=name, width=None, height=None, seed=seed)
            try:
                edits.append(self.edit(actor, one, step, cancel, group_id=group_id))
            except (GenerationCancelled, CancelledError):  # inline, or queued (STUDIO_GENERATION=queue)
                if not edits:
                    raise
                return CampaignResult(group_id, image.id, tuple(edits), tuple(skipped), cancelled=True)
        return CampaignResult(group_id, image.id, tuple(edits), tuple(skipped))

    def regenerate(
        self,
        actor: Actor,
        image_id: int,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        """Make an edited image again from its recipe and stored source (and mask): same pixels, a new image
        (``GenerationService.regenerate`` comes here for edits)."""
        with self._sessions() as session:
            plan, recipe = recipe_plan(session, self._settings, self._controls, actor, image_id)
        for problem in self._planner.cap_problems(plan):
            raise problem
        return self.run_recipe(actor, plan, recipe, progress, cancel)

    def regenerate_recipe(
        self, actor: Actor, recipe: Recipe, brand: str, name: str, progress: ProgressCallback | None = None
    ) -> GenerationResult:
        """An edit made again from its ``recipe`` alone (the PNG ``name`` of an image this studio does not
        have) as a new image of ``brand``, when its source and mask are in the store; otherwise a
        ValidationError saying the source image is needed (:mod:`studio.services.editing_recipe`)."""
        require_stored_inputs(recipe, self._files, name)
        with self._sessions() as session:
            plan = brand_recipe_plan(session, self._settings, actor, recipe, brand, name)
        for problem in self._planner.cap_problems(plan):
            raise problem
        return self.run_recipe(actor, plan, recipe, progress)

    def run_recipe(
        self,
        actor: Actor,
        plan: Plan,
        recipe: Recipe,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> GenerationResult:
        """Run an edit's recipe (planned by ``recipe_plan``) and save the image with its lineage."""
        from studio.engine.edit_request import edit_request_from_recipe

        entry = recipe.edit
        if entry is None:
            raise ValidationError("recipe", "this image was not made by an edit")
        source = self._files.load("sources", entry.source_sha256, "source")
        mask = self._files.load("masks", entry.mask_sha256, "mask") if entry.mask_sha256 else None
        request = edit_request_from_recipe(recipe, source, mask)
        request = replace(request, generation=replace(plan.request, width=recipe.width, height=recipe.height))
        images = self._run(self._engines.get(), request, progress, cancel)
        source_png = self._files.read_bytes("sources", entry.source_sha256, "source")
        mask_png = self._files.read_bytes("masks", entry.mask_sha256, "mask") if entry.mask_sha256 else None
        view = self._save(actor, plan, images, source_png, mask_png, None)
        return GenerationResult(
            generation_id=view.image.generation_id,
            brand_slug=plan.brand_slug,
            prompt=recipe.prompt,
            negative_prompt=recipe.negative_prompt,
            cfg=recipe.guidance_scale,
            seed=view.image.seed,
            images=(view.image,),
            requested=1,
        )

    # --------------------------------------------------------------------------------------- reading

    def lineage(self, actor: Actor, image_id: int) -> Lineage:
        """The image's ancestors, children and campaign group, as far as the actor may see them."""
        with self._sessions() as session:
            return self._reader.lineage(session, actor, visible_image(session, actor, image_id))

    def group(self, actor: Actor, group_id: str) -> tuple[EditView, ...]:
        """The images of a campaign group that the actor may see (reviewed together or one by one)."""
        with self._sessions() as session:
            return self._reader.group(session, actor, str(group_id))

    def edit_of(self, actor: Actor, image_id: int) -> EditView | None:
        """How a visible image was made by an edit; None for an image made from text."""
        with self._sessions() as session:
            image = visible_image(session, actor, image_id)
            edit = session.get(ImageEdit, image.id)
            return None if edit is None else self._reader.edit_view(session, image, edit)

    def edit_images(self, actor: Actor, image_id: int) -> tuple[PILImage.Image, PILImage.Image | None]:
        """The stored source and mask (None unless an inpaint) a visible edited image was made from."""
        view = self.edit_of(actor, image_id)
        if view is None:
            raise NotFoundError(f"image {image_id} was not made by an edit")
        source = load_image(view.source_path, "source")
        mask = PILImage.open(view.mask_path).convert("L") if view.mask_path is not None else None
        return source, mask

    # --------------------------------------------------------------------------------------- regions

    def mark_region(self, actor: Actor, image_id: int, mask: Any, comment: str = "") -> RegionView:
        """A reviewer (of the image's brand) or an admin marks a region to fix (white or painted pixels of
        ``mask``, the image's size); the marketer's "Fix region" inpaints it (``EditInput(region_id=…)``)."""
        return self._regions.mark(actor, image_id, mask, comment)

    def regions(self, actor: Actor, image_id: int) -> tuple[RegionView, ...]:
        """The regions marked on a visible image, newest first."""
        return self._regions.of_image(actor, image_id)

    def region_mask(self, actor: Actor, region_id: int) -> PILImage.Image:
        """A marked region's mask (L, white = the region) on an image the actor may see."""
        return self._regions.mask(actor, region_id)

    def sizes(self, actor: Actor, image_id: int) -> tuple[tuple[str, int, int], ...]:
        """The size presets (name, width, height) of a visible image's brand, for one who may edit it: what
        the edit panel offers to expand to (a reviewer too, where reviewers may edit)."""
        with self._sessions() as session:
            self._editor_roles(session, actor)
            brand = session.get(Brand, visible_image(session, actor, image_id).brand_id)
            assert brand is not None
            return tuple((p["name"], int(p["width"]), int(p["height"])) for p in brand.size_presets)

    # ------------------------------------------------------------------------------------- internals

    def _editor_roles(self, session: Session, actor: Actor) -> tuple[str, ...]:
        """The roles that may edit (reviewers too where the setting allows); refuses an actor with none."""
        roles = ("marketer", "reviewer") if self._settings.reviewers_may_edit else ("marketer",)
        held = actor_roles(session, actor)
        if "admin" not in held and not held.intersection(roles):
            raise PermissionDeniedError(f"{actor.username} may not edit images (needs the marketer role)")
        return roles

    def _plan(
        self, session: Session, actor: Actor, request: EditInput, kind: str
    ) -> tuple[Plan, PILImage.Image, int | None]:
        """The brand's plan for the edit, the source picture and the parent image's id (None for a file)."""
        roles = self._editor_roles(session, actor)
        parent: Image | None = None
        generation: Generation | None = None
        if request.image_id is not None:
            parent = visible_image(session, actor, request.image_id)
            generation = parent.generation
            brand = session.get(Brand, parent.brand_id)
            assert brand is not None
            if request.brand not in (None, "", brand.slug):
                raise ValidationError("brand", f"image {parent.id} belongs to brand {brand.slug}")
            source = load_image(self._settings.images_dir / parent.file_path, "image_id")
        else:
            brand = session.scalar(select(Brand).where(Brand.slug == str(request.brand).strip()))
            if brand is None:
                raise NotFoundError(f"brand {request.brand!r} not found")
            source = load_image(request.source, "source")  # type: ignore[arg-type]
        recipe = None if generation is None else {**generation.recipe, "seed": parent.seed}  # type: ignore[union-attr]
        planned = self._planner.plan(
            session, actor, generate_input(request, brand, generation, recipe), caps=False, roles=roles
        )
        size = output_size(kind, source.size, planned.request, request.scale)
        family, limits = self._planner.limits(planned.base_model)
        steps, batch = planned.request.num_inference_steps, planned.request.batch_size
        for problem in cap_problems(limits, family, steps, batch, size):
            raise problem
        return planned, source, None if parent is None else parent.id

    def _mask(
        self, session: Session, actor: Actor, request: EditInput, size: tuple[int, int]
    ) -> PILImage.Image:
        if request.region_id is not None:
            region = self._regions.row(session, actor, request.region_id)
            if region.image_id != request.image_id:
                raise ValidationError("region_id", f"region {region.id} was marked on another image")
            return load_mask(self._files.load("masks", region.mask_sha256, "region_id"), size, "region_id")
        if request.mask is None:
            raise ValidationError("mask", "inpainting needs a painted mask or a marked region")
        return load_mask(request.mask, size)

    @staticmethod
    def _run(
        engine: Engine,
        request: EditRequest,
        progress: ProgressCallback | None,
        cancel: threading.Event | None,
    ) -> list[GeneratedImage]:
        from studio.engine.edit import edit_images
        from studio.engine.generate import GenerationCancelled

        try:
            return edit_images(engine, request, progress, cancel)
        except GenerationCancelled as cancelled:
            if not cancelled.images:
                raise
            return list(cancelled.images)

    def _save(
        self,
        actor: Actor,
        plan: Plan,
        images: list[GeneratedImage],
        source_png: bytes,
        mask_png: bytes | None,
        group_id: str | None,
    ) -> EditView:
        """Store the source and mask, then save the image with its edit row in one transaction."""
        entry = images[0].recipe.edit
        assert entry is not None
        self._files.put("sources", source_png)
        if mask_png is not None:
            self._files.put("masks", mask_png)

        within = lineage_rows(actor, entry, group_id)
        result = self._saver.save(actor, plan, plan.request, images, within=within)
        return self._view(result.images[0].id, result.images[0].download_path)

    def _view(self, image_id: int, download_path: Path | None) -> EditView:
        with self._sessions() as session:
            image = session.get(Image, image_id)
            edit = session.get(ImageEdit, image_id)
            assert image is not None and edit is not None
            view = self._reader.edit_view(session, image, edit)
        return replace(view, image=replace(view.image, download_path=download_path))

    def _image_view(self, session: Session, image: Image) -> ImageView:
        slug = session.scalar(select(Brand.slug).where(Brand.id == image.brand_id)) or ""
        return self._saver.image_view(image, image.generation, slug)
