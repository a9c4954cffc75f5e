"""Gallery: who may see which image, filtered and paginated listings, image details with their recipe and
review history, side-by-side comparison, remix recipes, and the export of approved images as a zip.

Visibility is :mod:`studio.services.visibility` (re-exported here): admins see every image, reviewers every
image of their brands, everyone else their own images and the approved ones of their brands; an image the
actor may not see is reported exactly like a missing one (``NotFoundError("image N not found")``).

Listing pages use offset pagination over the ``images`` indexes (``ix_images_created``,
``ix_images_brand_created``, ``ix_images_brand_status_created``, ``ix_images_user_created``,
``ix_images_brand_flag_created``, ``ix_images_brand_score``); a page fetches one row more than it shows to
know whether a next page exists (no ``COUNT``).
"""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from studio.config import Settings
from studio.db.base import utcnow
from studio.db.generation_models import REVIEW_STATUSES, Generation, GenerationLora, GenerationTemplate, Image
from studio.db.models import Brand, BrandMember, ControlTemplate, LoraAdapter, LoraVersion, User
from studio.db.review_models import Review
from studio.errors import NotFoundError, ValidationError
from studio.services import audit
from studio.services.generation import GenerateInput
from studio.services.permissions import actor_user, readable_brand
from studio.services.views import Actor
from studio.services.visibility import image_number, visibility_clause, visible_image
from studio.storage.atomic import atomic_writer

SORTS = ("newest", "oldest", "palette_low", "palette_high")
MAX_PAGE_SIZE = 200
MAX_COMPARE = 8
MAX_EXPORT = 10_000


# ------------------------------------------------------------------------------------------------- views


@dataclass(frozen=True)
class GalleryFilter:
    """What a gallery listing (or an export) matches; ``None`` leaves a criterion out.

    ``since``/``until`` are inclusive UTC days (``date`` or ``YYYY-MM-DD``) or exact datetimes; ``text``
    matches the prompt as typed (case-insensitive substring); ``palette_flag`` True keeps off-palette images.
    """

    brand: str | None = None
    status: str | None = None
    author: str | None = None
    since: date | datetime | str | None = None
    until: date | datetime | str | None = None
    text: str | None = None
    lora_version_id: int | None = None
    template_id: int | None = None
    palette_flag: bool | None = None
    sort: str = "newest"


@dataclass(frozen=True)
class ReviewEntry:
    """One transition of an image's review status."""

    id: int
    image_id: int
    reviewer: str
    decision: str
    from_status: str
    to_status: str
    comment: str
    at: datetime


@dataclass(frozen=True)
class GalleryItem:
    """An image in a listing or in the review queue (``path`` is absolute)."""

    id: int
    brand_slug: str
    author: str
    prompt: str
    path: Path
    width: int
    height: int
    seed: int
    review_status: str
    palette_score: float | None
    palette_flag: bool
    palette_misses: tuple[dict[str, Any], ...]
    created_at: datetime

    @property
    def missed_colours(self) -> tuple[str, ...]:
        """The off-palette dominant colours (hex), largest first."""
        return tuple(str(m.get("colour", "")) for m in self.palette_misses)


@dataclass(frozen=True)
class GalleryPage:
    """One page of a listing; ``page`` counts from 1."""

    items: tuple[GalleryItem, ...]
    page: int
    page_size: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.page > 1


@dataclass(frozen=True)
class ImageDetail:
    """An image with everything about it: the generation's prompts and full recipe, LoRAs, templates and
    the review history (oldest first)."""

    item: GalleryItem
    generation_id: int
    negative_prompt: str
    final_prompt: str
    final_negative_prompt: str
    recipe: dict[str, Any]
    loras: tuple[dict[str, Any], ...]
    templates: tuple[dict[str, Any], ...]
    history: tuple[ReviewEntry, ...]

    @property
    def id(self) -> int:
        return self.item.id

    def recipe_json(self) -> str:
        return json.dumps(self.recipe, indent=2, sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class DiffRow:
    """One recipe field across the compared images; ``differs`` when not all values are equal."""

    key: str
    values: tuple[str, ...]
    differs: bool


@dataclass(frozen=True)
class Comparison:
    """Two or more images side by side with every recipe field, differing ones flagged."""

    images: tuple[ImageDetail, ...]
    rows: tuple[DiffRow, ...]

    @property
    def differences(self) -> tuple[DiffRow, ...]:
        return tuple(row for row in self.rows if row.differs)


@dataclass(frozen=True)
class FilterOptions:
    """Choices for the gallery's filters in the brands the actor may read."""

    brands: tuple[str, ...]
    authors: tuple[str, ...]
    lora_versions: tuple[tuple[str, int], ...]  # (label, lora version id)
    templates: tuple[tuple[str, int], ...]  # (label, template id)


@dataclass(frozen=True)
class ExportResult:
    """A written export: the zip, the exported image ids, and selected ids left out (not approved/visible)."""

    path: Path
    image_ids: tuple[int, ...]
    skipped: tuple[int, ...] = field(default=())

    @property
    def count(self) -> int:
        return len(self.image_ids)


# ------------------------------------------------------------------------------------- query building


def _bound(value: date | datetime | str | None, name: str, end: bool) -> datetime | None:
    """An inclusive day or exact datetime → an aware UTC bound (``end``: the first instant after it)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            raise ValidationError(name, f"{text!r} is not a date (YYYY-MM-DD)") from None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    day = datetime.combine(value, time.min, tzinfo=UTC)
    return day + timedelta(days=1) if end else day


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _optional_int(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationError(name, f"{value!r} is not an id") from None


def filtered_query(session: Session, actor: Actor, flt: GalleryFilter) -> Select[Any]:
    """``SELECT image, brand slug, author, prompt`` for what ``actor`` may see matching ``flt``, sorted."""
    if flt.sort not in SORTS:
        raise ValidationError("sort", f"{flt.sort!r} is not one of {', '.join(SORTS)}")
    query = (
        select(Image, Brand.slug, User.username, Generation.prompt)
        .join(Generation, Generation.id == Image.generation_id)
        .join(Brand, Brand.id == Image.brand_id)
        .join(User, User.id == Image.user_id)
    )
    clause = visibility_clause(session, actor)
    if clause is not None:
        query = query.where(clause)
    if flt.brand:
        brand, _ = readable_brand(session, actor, flt.brand.strip())
        query = query.where(Image.brand_id == brand.id)
    if flt.status:
        if flt.status not in REVIEW_STATUSES:
            raise ValidationError("status", f"{flt.status!r} is not one of {', '.join(REVIEW_STATUSES)}")
        query = query.where(Image.review_status == flt.status)
    if flt.author:
        author_id = session.scalar(select(User.id).where(User.username == flt.author.strip()))
        query = query.where(Image.user_id == (author_id if author_id is not None else -1))
    since, until = _bound(flt.since, "since", False), _bound(flt.until, "until", True)
    if since is not None:
        query = query.where(Image.created_at >= since)
    if until is not None:
        query = query.where(Image.created_at < until)
    if flt.text and flt.text.strip():
        query = query.where(Generation.prompt.ilike(f"%{_escape_like(flt.text.strip())}%", escape="\\"))
    lora_version_id = _optional_int(flt.lora_version_id, "lora_version_id")
    if lora_version_id is not None:
        query = query.where(
            select(GenerationLora.id)
            .where(
                GenerationLora.generation_id == Image.generation_id,
                GenerationLora.lora_version_id == lora_version_id,
            )
            .exists()
        )
    template_id = _optional_int(flt.template_id, "template_id")
    if template_id is not None:
        query = query.where(
            select(GenerationTemplate.id)
            .where(
                GenerationTemplate.generation_id == Image.generation_id,
                GenerationTemplate.template_id == template_id,
            )
            .exists()
        )
    if flt.palette_flag is not None:
        query = query.where(Image.palette_flag.is_(bool(flt.palette_flag)))
    order = {
        "newest": (Image.created_at.desc(), Image.id.desc()),
        "oldest": (Image.created_at.asc(), Image.id.asc()),
        "palette_low": (Image.palette_score.asc(), Image.id.asc()),
        "palette_high": (Image.palette_score.desc(), Image.id.desc()),
    }[flt.sort]
    return query.order_by(*order)


# ---------------------------------------------------------------------------------------------- service


class GalleryService:
    """List, open, compare, remix and export images. See the module docstring for who sees what."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings

    @property
    def exports_dir(self) -> Path:
        """Where exports go when no output file is given (served to the browser by the app)."""
        return self._settings.home / "exports"

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
        sampler, steps, CFG, LoRA weights — the brand's other LoRAs at 0 — and templates)."""
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
            )

    # -------------------------------------------------------------------------------------------- export

    def export(
        self,
        actor: Actor,
        out: Path | str | None = None,
        *,
        image_ids: Sequence[Any] | None = None,
        flt: GalleryFilter | None = None,
    ) -> ExportResult:
        """Write the approved images of a selection (``image_ids``) or of a filter as a zip.

        The zip holds ``images/<id>.png`` (the original files, embedded recipe intact), ``metadata.csv`` and
        ``metadata.json``; it is written atomically. Pending and rejected images are never included; when
        nothing approved matches, ValidationError and no file is written.
        """
        target = (
            Path(out) if out else self.exports_dir / f"export-{utcnow():%Y%m%d-%H%M%S}-{uuid.uuid4().hex}.zip"
        )
        if target.suffix.lower() != ".zip":
            raise ValidationError("out", f"{target.name} must end in .zip")
        with self._sessions() as session:
            if image_ids is not None:
                wanted = list(dict.fromkeys(image_number(i) for i in image_ids))
                if not wanted:
                    raise ValidationError("images", "select at least one image to export")
                query = filtered_query(session, actor, GalleryFilter(sort="oldest"))
                query = query.where(Image.id.in_(wanted), Image.review_status == "approved")
            else:
                base = flt or GalleryFilter()
                if base.status not in (None, "", "approved"):
                    raise ValidationError("status", "only approved images are ever exported")
                query = filtered_query(session, actor, replace(base, status="approved"))
                wanted = []
            rows = session.execute(query.limit(MAX_EXPORT + 1)).all()
            if not rows:
                raise ValidationError("export", "no approved images match; nothing was exported")
            if len(rows) > MAX_EXPORT:
                raise ValidationError("export", f"more than {MAX_EXPORT} images match; narrow the filter")
            records = self._export_records(session, rows)
        self._write_zip(target, records)
        exported = tuple(int(r["id"]) for r in records)
        with self._sessions.begin() as session:
            audit.record(session, actor, "export.create", str(target), images=list(exported))
        return ExportResult(
            path=target, image_ids=exported, skipped=tuple(i for i in wanted if i not in set(exported))
        )

    def _export_records(self, session: Session, rows: Sequence[Any]) -> list[dict[str, Any]]:
        ids = [row[0].id for row in rows]
        approvals: dict[int, tuple[str, datetime, str]] = {}
        query = (
            select(Review.image_id, User.username, Review.created_at, Review.comment)
            .join(User, User.id == Review.reviewer_id)
            .where(Review.image_id.in_(ids), Review.to_status == "approved")
            .order_by(Review.created_at, Review.id)
        )
        for image_id, reviewer, at, comment in session.execute(query):
            approvals[image_id] = (reviewer, at, comment)  # the latest approval wins
        records = []
        for image, slug, author, prompt in rows:
            path = self._settings.images_dir / image.file_path
            if not path.is_file():
                raise NotFoundError(f"image {image.id}: its file {image.file_path} is missing")
            reviewer, decided_at, comment = approvals.get(image.id, ("", None, ""))
            generation = image.generation
            records.append(
                {
                    "id": image.id,
                    "brand": slug,
                    "author": author,
                    "prompt": prompt,
                    "final_prompt": generation.final_prompt,
                    "negative_prompt": generation.final_negative_prompt,
                    "seed": image.seed,
                    "width": image.width,
                    "height": image.height,
                    "reviewer": reviewer,
                    "decision_time": decided_at.isoformat() if decided_at else "",
                    "review_comment": comment,
                    "palette_score": image.palette_score,
                    "palette_flag": image.palette_flag,
                    "file": f"images/{image.id}.png",
                    "file_sha256": image.file_sha256,
                    "created_at": image.created_at.isoformat(),
                    "recipe": {**generation.recipe, "seed": image.seed},
                    "_source": path,
                }
            )
        return records

    @staticmethod
    def _write_zip(target: Path, records: list[dict[str, Any]]) -> None:
        public = [{k: v for k, v in r.items() if k != "_source"} for r in records]
        csv_text = io.StringIO()
        writer = csv.DictWriter(csv_text, fieldnames=list(public[0]), lineterminator="\n")
        writer.writeheader()
        for record in public:
            writer.writerow({**record, "recipe": json.dumps(record["recipe"], sort_keys=True)})
        with atomic_writer(target) as fh, zipfile.ZipFile(fh, "w") as archive:
            for record in records:
                archive.write(record["_source"], record["file"], compress_type=zipfile.ZIP_STORED)
            archive.writestr("metadata.csv", csv_text.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
            archive.writestr(
                "metadata.json",
                json.dumps(public, indent=2, ensure_ascii=False, default=str),
                compress_type=zipfile.ZIP_DEFLATED,
            )

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
        generation = image.generation
        slug = session.scalar(select(Brand.slug).where(Brand.id == image.brand_id)) or ""
        author = session.scalar(select(User.username).where(User.id == image.user_id)) or ""
        return ImageDetail(
            item=self.item(image, slug, author, generation.prompt),
            generation_id=generation.id,
            negative_prompt=generation.negative_prompt,
            final_prompt=generation.final_prompt,
            final_negative_prompt=generation.final_negative_prompt,
            recipe={**generation.recipe, "seed": image.seed},
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


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts/lists → ``{"loras[0].weight": "0.8", ...}`` with JSON-ish leaf text."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key in sorted(value):
            out.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list | tuple):
        if not value:
            return {prefix: "[]"}
        out = {}
        for index, entry in enumerate(value):
            out.update(flatten(entry, f"{prefix}[{index}]"))
        return out
    return {prefix: "" if value is None else str(value)}


def diff_rows(details: Iterable[ImageDetail]) -> tuple[DiffRow, ...]:
    """Every recipe field (plus brand, author, status, palette score) per image, differing ones flagged."""
    flats = []
    for detail in details:
        flat = {
            "brand": detail.item.brand_slug,
            "author": detail.item.author,
            "review_status": detail.item.review_status,
            "palette_score": "" if detail.item.palette_score is None else f"{detail.item.palette_score:.3f}",
        }
        flat.update(flatten(detail.recipe))
        flats.append(flat)
    keys = list(dict.fromkeys(key for flat in flats for key in flat))
    rows = []
    for key in keys:
        values = tuple(flat.get(key, "—") for flat in flats)
        rows.append(DiffRow(key=key, values=values, differs=len(set(values)) > 1))
    return tuple(rows)
