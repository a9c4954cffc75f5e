"""The gallery's query: what an actor may see, narrowed by a :class:`GalleryFilter`, sorted.

Listing pages use offset pagination over the ``images`` indexes (``ix_images_created``,
``ix_images_brand_created``, ``ix_images_brand_status_created``, ``ix_images_user_created``,
``ix_images_brand_flag_created``, ``ix_images_brand_score``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from studio import text_limits as limits
from studio.db.generation_models import REVIEW_STATUSES, Generation, GenerationLora, GenerationTemplate, Image
from studio.db.models import Brand, User
from studio.errors import ValidationError
from studio.services.permissions import readable_brand
from studio.services.views import Actor
from studio.services.visibility import visibility_clause

SORTS = ("newest", "oldest", "palette_low", "palette_high")


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
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError(name, f"{value!r} is not an id") from None
    if not 0 < number < 2**63:
        raise ValidationError(name, f"{number} is not an id")
    return number


def check_filter_lengths(flt: GalleryFilter) -> None:
    """Refuse filter text longer than its limit (:mod:`studio.text_limits`), naming the filter, before any
    query runs (a 60 KB search once reached the database and came back as SQL)."""
    for name, limit in (
        ("text", limits.FILTER_TEXT),
        ("brand", limits.FILTER_NAME),
        ("author", limits.FILTER_NAME),
        ("status", limits.FILTER_NAME),
        ("sort", limits.FILTER_NAME),
        ("since", limits.FILTER_DATE),
        ("until", limits.FILTER_DATE),
        ("lora_version_id", limits.FILTER_DATE),
        ("template_id", limits.FILTER_DATE),
    ):
        value = getattr(flt, name)
        if isinstance(value, str):
            limits.check_length(name, value, limit)


def filtered_query(session: Session, actor: Actor, flt: GalleryFilter) -> Select[Any]:
    """``SELECT image, brand slug, author, prompt`` for what ``actor`` may see matching ``flt``, sorted."""
    check_filter_lengths(flt)
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
