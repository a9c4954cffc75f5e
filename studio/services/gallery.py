"""Gallery: who may see which image, filtered and paginated listings, image details with their recipe and
review history, side-by-side comparison, remix recipes, and the export of approved images as a zip.

Visibility is :mod:`studio.services.visibility` (re-exported here): admins see every image, reviewers every
image of their brands, everyone else their own images and the approved ones of their brands; an image the
actor may not see is reported exactly like a missing one (``NotFoundError("image N not found")``).

The parts live beside this file: the views it returns (:mod:`~studio.services.gallery_views`), the query
(:mod:`~studio.services.gallery_query`), the recipe comparison (:mod:`~studio.services.gallery_compare`) and
the zip export (:mod:`~studio.services.gallery_export`); their names are re-exported here. A listing page
fetches one row more than it shows to know whether a next page exists (no ``COUNT``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, fields, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from studio.config import Settings
from studio.db.generation_models import Image
from studio.db.models import Brand, BrandMember, ControlTemplate, LoraAdapter, LoraVersion, User
from studio.db.review_models import Review
from studio.errors import ValidationError
from studio.services.brand_models import model_name
from studio.services.gallery_compare import Comparison, DiffRow, diff_rows, flatten
from studio.services.gallery_export import MAX_EXPORT, ExportResult, GalleryExport
from studio.services.gallery_query import SORTS, GalleryFilter, filtered_query
from studio.services.gallery_views import FilterOptions, GalleryItem, GalleryPage, ImageDetail, ReviewEntry
from studio.services.generation import GenerateInput
from studio.services.permissions import actor_user, readable_brand
from studio.services.views import Actor
from studio.services.visibility import image_number, visibility_clause, visible_image

__all__ = [
    "MAX_COMPARE",
    "MAX_EXPORT",
    "MAX_PAGE_SIZE",
    "SORTS",
    "Comparison",
    "DiffRow",
    "ExportResult",
    "FilterOptions",
    "GalleryFilter",
    "GalleryItem",
    "GalleryPage",
    "GalleryService",
    "ImageDetail",
    "ReviewEntry",
    "diff_rows",
    "filtered_query",
    "flatten",
    "generate_input_from_json",
    "remix_json",
    "review_history",
    "visibility_clause",
    "visible_image",
]

MAX_PAGE_SIZE = 200
MAX_COMPARE = 8


# ---------------------------------------------------------------------------------------------- service


class GalleryService:
    """List, open, compare, remix and export images. See the module docstring for who sees what."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings
        self._export = GalleryExport(sessions, settings)

    @property
    def exports_dir(self) -> Path:
        """Where exports go when no output file is given (served to the browser by the app)."""
        return self._export.exports_dir

    # ------------------------------------------------------------------------------------------ reading

    def list_images(
        self, actor: Actor, flt: GalleryFilter | None = None, *, page: int = 1, page_size: int = 50
    ) -> GalleryPage:
        """One page of the images ``actor`` may see that match ``flt``."""
        flt = flt or GalleryFilter()
        page, page_size = max(1, int(page)), max(1, min(int(page_size), MAX_PAGE_SIZE))
        with self._sessions() as session:
            query = filtered_query(session, actor, flt).limit(page_size + 1).offset((page - 1) * page_size)
            rows = session.execute(query).all()
            items = tuple(self.item(*row) for row in rows[:page_size])
        return GalleryPage(items=items, page=page, page_size=page_size, has_next=len(rows) > page_size)

    def filter_options(self, actor: Actor, brand: str | None = None) -> FilterOptions:
        """Brands, authors, LoRA versions and templates to filter on (of one brand, or all readable)."""
        with self._sessions() as session:
            user = actor_user(session, actor)
            brand_query = select(Brand.id, Brand.slug).order_by(Brand.slug)
            if user is not None and "admin" not in user.role_names:
                brand_query = brand_query.join(BrandMember).where(BrandMember.user_id == user.id)
            brands = session.execute(brand_query).all()
            ids = [row.id for row in brands]
            if brand:
                ids = [readable_brand(session, actor, brand)[0].id]
            authors = session.scalars(
                select(User.username)
                .where(User.id.in_(select(Image.user_id).where(Image.brand_id.in_(ids)).distinct()))
                .order_by(User.username)
            ).all()
            versions = session.execute(
                select(LoraVersion.id, LoraVersion.sha256, LoraAdapter.name, Brand.slug)
                .join(LoraAdapter, LoraAdapter.id == LoraVersion.adapter_id)
                .join(Brand, Brand.id == LoraAdapter.brand_id)
                .where(LoraAdapter.brand_id.in_(ids))
                .order_by(Brand.slug, LoraAdapter.name, LoraVersion.id)
            ).all()
            templates = session.execute(
                select(ControlTemplate.id, ControlTemplate.name, Brand.slug)
                .join(Brand, Brand.id == ControlTemplate.brand_id)
                .where(ControlTemplate.brand_id.in_(ids))
                .order_by(Brand.slug, ControlTemplate.name)
            ).all()
        return FilterOptions(
            brands=tuple(row.slug for row in brands),
            authors=tuple(authors),
            lora_versions=tuple((f"{v.slug}/{v.name} #{v.id} ({v.sha256[:8]})", int(v.id)) for v in versions),
            templates=tuple((f"{t.slug}/{t.name}", int(t.id)) for t in templates),
        )

    def detail(self, actor: Actor, image_id: Any) -> ImageDetail:
        """An image with its full recipe and review history (NotFoundError when not visible)."""
        with self._sessions() as session:
            image = visible_image(session, actor, image_id)
            return self.image_detail(session, image)

    def history(self, actor: Actor, image_id: Any) -> tuple[ReviewEntry, ...]:
        """The image's review transitions, oldest first."""
        with self._sessions() as session:
            image = visible_image(session, actor, image_id)
            return review_history(session, image.id)

    def compare(self, actor: Actor, image_ids: Sequence[Any]) -> Comparison:
        """Two to :data:`MAX_COMPARE` images side by side with every recipe field, differences flagged."""
        ids = list(dict.fromkeys(image_number(i) for i in image_ids))
        if not 2 <= len(ids) <= MAX_COMPARE:
            raise ValidationError("images", f"choose 2 to {MAX_COMPARE} different images to compare")
        with self._sessions() as session:
            details = tuple(self.image_detail(session, visible_image(session, actor, i)) for i in ids)
        return Comparison(images=details, rows=diff_rows(details))

    def remix(self, actor: Actor, image_id: Any) -> GenerateInput:
        """The Generate form's input that makes this image's recipe again (prompt as typed, same seed, size,
        sampler, steps, CFG, guidance, LoRA weights — the brand's other LoRAs at 0 — and templates)."""
        with self._sessions() as session:
            image = visible_image(session, actor, image_id)
            generation = image.generation
            brand = session.get(Brand, image.brand_id)
            assert brand is not None
            used = {lora.adapter_name: lora.weight for lora in generation.loras}
            loras = {adapter.name: float(used.get(adapter.name, 0.0)) for adapter in brand.adapters}
            loras.update(used)
            return GenerateInput(
                brand=brand.slug,
                prompt=generation.prompt,
                negative_prompt=generation.negative_prompt,
                cfg=generation.cfg,
                steps=generation.steps,
                seed=image.seed,
                sampler=generation.sampler,
                width=image.width,
                height=image.height,
                loras=loras,
                templates=tuple(t.template_name for t in generation.templates),
                batch_size=1,
                # the recipe's guidance; plain CFG said outright, so a brand default does not replace it
                guidance=(generation.recipe or {}).get("guidance") or {"method": "cfg"},
            )

    # -------------------------------------------------------------------------------------------- export

    def export(
        self,
        actor: Actor,
        out: Path | str | None = None,
        *,
        image_ids: Sequence[Any] | None = None,
        flt: GalleryFilter | None = None,
        with_lineage: bool = False,
    ) -> ExportResult:
        """Write the approved images of a selection (``image_ids``) or of a filter as a zip, with each
        image's edit lineage when ``with_lineage`` (see
        :meth:`GalleryExport.export <studio.services.gallery_export.GalleryExport.export>`)."""
        return self._export.export(actor, out, image_ids=image_ids, flt=flt, with_lineage=with_lineage)

    # ------------------------------------------------------------------------------------------- helpers

    def item(self, image: Image, slug: str, author: str, prompt: str) -> GalleryItem:
        """The listing view of an image row (with its brand slug, author name and typed prompt)."""
        return GalleryItem(
            id=image.id,
            brand_slug=slug,
            author=author,
            prompt=prompt,
            path=self._settings.images_dir / image.file_path,
            width=image.width,
            height=image.height,
            seed=image.seed,
            review_status=image.review_status,
            palette_score=image.palette_score,
            palette_flag=bool(image.palette_flag),
            palette_misses=tuple(image.palette_misses or ()),
            created_at=image.created_at,
        )

    def image_detail(self, session: Session, image: Image) -> ImageDetail:
        """Everything about ``image`` (visibility already checked by the caller)."""
        from studio.palette import merge_missed  # colour-science: imported on the first detail, not at start

        generation = image.generation
        brand = session.execute(select(Brand.slug, Brand.palette).where(Brand.id == image.brand_id)).first()
        author = session.scalar(select(User.username).where(User.id == image.user_id)) or ""
        item = self.item(image, brand.slug if brand else "", author, generation.prompt)
        return ImageDetail(
            item=replace(item, palette_misses=tuple(merge_missed(item.palette_misses))),
            palette=tuple(str(c) for c in (brand.palette if brand else None) or ()),
            generation_id=generation.id,
            negative_prompt=generation.negative_prompt,
            final_prompt=generation.final_prompt,
            final_negative_prompt=generation.final_negative_prompt,
            recipe=shown_recipe(generation.recipe, image.seed),
            loras=tuple(
                {
                    "name": lora.adapter_name,
                    "sha256": lora.sha256,
                    "weight": lora.weight,
                    "version_id": lora.lora_version_id,
                }
                for lora in generation.loras
            ),
            templates=tuple(
                {
                    "name": t.template_name,
                    "template_id": t.template_id,
                    "scale": t.conditioning_scale,
                    "start": t.guidance_start,
                    "end": t.guidance_end,
                    "control_image_sha256": t.control_image_sha256,
                }
                for t in generation.templates
            ),
            history=review_history(session, image.id),
        )


def review_history(session: Session, image_id: int) -> tuple[ReviewEntry, ...]:
    """An image's review transitions, oldest first."""
    query = (
        select(Review, User.username)
        .join(User, User.id == Review.reviewer_id)
        .where(Review.image_id == image_id)
        .order_by(Review.created_at, Review.id)
    )
    return tuple(
        ReviewEntry(
            id=review.id,
            image_id=review.image_id,
            reviewer=name,
            decision=review.decision,
            from_status=review.from_status,
            to_status=review.to_status,
            comment=review.comment,
            at=review.created_at,
        )
        for review, name in session.execute(query)
    )


def shown_recipe(recipe: dict[str, Any], seed: int) -> dict[str, Any]:
    """A stored recipe as the gallery shows it: this image's seed, and the base model and each ControlNet
    named by :func:`~studio.services.brand_models.model_name` (a local folder by its name, not its server
    path). Regenerate and Remix read the stored recipe, not this."""
    shown: dict[str, Any] = {**recipe, "seed": seed}
    if isinstance(shown.get("base_model"), str):
        shown["base_model"] = model_name(shown["base_model"])
    if isinstance(shown.get("controls"), list):
        shown["controls"] = [
            {**unit, "controlnet": model_name(unit["controlnet"])}
            if isinstance(unit, dict) and isinstance(unit.get("controlnet"), str)
            else unit
            for unit in shown["controls"]
        ]
    return shown


def remix_json(request: GenerateInput) -> str:
    """A Generate form input (from :meth:`GalleryService.remix`) as JSON the Generate tab can load."""
    data = asdict(request)
    data["loras"], data["templates"] = dict(request.loras), list(request.templates)
    return json.dumps(data, indent=2, sort_keys=True)


def generate_input_from_json(text: str) -> GenerateInput:
    """The reverse of :func:`remix_json` (unknown fields refused)."""
    try:
        data = json.loads(text)
    except (TypeError, json.JSONDecodeError) as exc:
        raise ValidationError("recipe", f"not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValidationError("recipe", "must be a JSON object")
    unknown = sorted(set(data) - {f.name for f in fields(GenerateInput)})
    if unknown:
        raise ValidationError("recipe", f"unknown fields: {', '.join(unknown)}")
    try:
        return GenerateInput(**{**data, "templates": tuple(data.get("templates") or ())})
    except TypeError as exc:
        raise ValidationError("recipe", str(exc)) from None
