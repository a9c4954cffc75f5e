"""Who may see which image: the one rule the gallery, the review queue and generation all apply.

Read from the database on every call: admins (and the CLI's SYSTEM actor) see every image; reviewers see every
image of the brands they belong to; everyone else sees, in the brands they belong to, their own images and
every approved image. An image the actor may not see is reported exactly like a missing one
(``NotFoundError("image N not found")``), so ids reveal nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import Session

from studio.db.generation_models import Image
from studio.db.models import BrandMember
from studio.errors import NotFoundError
from studio.services.permissions import actor_user
from studio.services.views import Actor


def visibility_clause(session: Session, actor: Actor) -> ColumnElement[bool] | None:
    """The SQL condition on ``images`` for what ``actor`` may see (None: everything)."""
    user = actor_user(session, actor)
    if user is None or "admin" in user.role_names:
        return None
    brand_ids = list(session.scalars(select(BrandMember.brand_id).where(BrandMember.user_id == user.id)))
    if not brand_ids:
        return false()
    in_brands = Image.brand_id.in_(brand_ids)
    if "reviewer" in user.role_names:
        return in_brands
    return and_(in_brands, or_(Image.user_id == user.id, Image.review_status == "approved"))


def visible_image(session: Session, actor: Actor, image_id: Any) -> Image:
    """The image if ``actor`` may see it; otherwise NotFoundError, whether or not it exists."""
    number = image_number(image_id)
    query = select(Image).where(Image.id == number)
    clause = visibility_clause(session, actor)
    if clause is not None:
        query = query.where(clause)
    image = session.scalar(query)
    if image is None:
        raise NotFoundError(f"image {image_id} not found")
    return image


def image_number(value: Any) -> int:
    """An image id from user input (int or digits); anything else is reported as a missing image."""
    if isinstance(value, bool):
        raise NotFoundError(f"image {value} not found")
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise NotFoundError(f"image {value} not found") from None
    if number <= 0:
        raise NotFoundError(f"image {value} not found")
    return number
