"""Repositories: small query functions that take the caller's session (the service owns the transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from studio.db.models import AuditEvent, Brand, BrandMember, User, UserRole

# ------------------------------------------------------------------------------------------------- users


def user_by_name(session: Session, username: str) -> User | None:
    """The account named ``username``, in any case (names are stored lowercase)."""
    return session.scalar(select(User).where(User.username == str(username).strip().lower()))


def all_users(session: Session) -> Sequence[User]:
    return session.scalars(select(User).order_by(User.username)).all()


def active_admin_count(session: Session) -> int:
    """Enabled users holding the admin role."""
    query = (
        select(func.count())
        .select_from(User)
        .join(UserRole)
        .where(UserRole.role == "admin", User.disabled.is_(False))
    )
    return int(session.scalar(query) or 0)


# ------------------------------------------------------------------------------------------------ brands


def brand_by_slug(session: Session, slug: str) -> Brand | None:
    return session.scalar(select(Brand).where(Brand.slug == slug))


def brands_visible_to(session: Session, user_id: int | None) -> Sequence[Brand]:
    """All brands (``user_id`` None) or the brands ``user_id`` is a member of, by slug."""
    query = select(Brand).order_by(Brand.slug)
    if user_id is not None:
        query = query.join(BrandMember).where(BrandMember.user_id == user_id)
    return session.scalars(query).all()


def membership(session: Session, brand_id: int, user_id: int) -> BrandMember | None:
    return session.get(BrandMember, {"brand_id": brand_id, "user_id": user_id})


# ------------------------------------------------------------------------------------------------- audit


def add_event(session: Session, actor: str, action: str, target: str | None, details: dict[str, Any]) -> None:
    session.add(AuditEvent(actor=actor, action=action, target=target, details=details))


def recent_events(
    session: Session, limit: int, action_prefix: str | None = None, target: str | None = None
) -> Sequence[AuditEvent]:
    """Newest first."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if action_prefix:
        query = query.where(AuditEvent.action.startswith(action_prefix, autoescape=True))
    if target:
        query = query.where(AuditEvent.target == target)
    return session.scalars(query).all()
