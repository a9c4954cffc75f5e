"""Permission checks, read from the database on every call (admins do everything)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from studio.db import repositories as repo
from studio.db.models import Brand, User
from studio.errors import NotFoundError, PermissionDeniedError
from studio.services.views import Actor


def actor_user(session: Session, actor: Actor) -> User | None:
    """The actor's user row (None for the system actor); unknown or disabled users are refused."""
    if actor.is_system:
        return None
    user = repo.user_by_name(session, actor.username)
    if user is None or user.disabled:
        raise PermissionDeniedError(f"user {actor.username!r} is unknown or disabled")
    return user


def actor_roles(session: Session, actor: Actor) -> frozenset[str]:
    """The actor's roles as stored now (the system actor is an admin)."""
    user = actor_user(session, actor)
    return frozenset({"admin"}) if user is None else user.role_names


def require_role(session: Session, actor: Actor, *roles: str) -> User | None:
    """Refuse unless the actor is an admin or holds one of ``roles``; returns the user row."""
    user = actor_user(session, actor)
    held = frozenset({"admin"}) if user is None else user.role_names
    if "admin" in held or held.intersection(roles):
        return user
    wanted = " or ".join(("admin",) + roles)
    raise PermissionDeniedError(f"{actor.username} may not do this (needs the {wanted} role)")


def require_admin(session: Session, actor: Actor) -> User | None:
    """Refuse unless the actor is an admin."""
    return require_role(session, actor)


def readable_brand(session: Session, actor: Actor, slug: str) -> tuple[Brand, bool]:
    """The brand if the actor may read it (admin, or member); returns (brand, actor_is_admin).

    Non-members get NotFoundError, so they cannot learn which brands exist.
    """
    user = actor_user(session, actor)
    brand = repo.brand_by_slug(session, slug)
    is_admin = user is None or "admin" in user.role_names
    if brand is not None and not is_admin:
        member = repo.membership(session, brand.id, user.id) if user else None
        if member is None:
            brand = None
    if brand is None:
        raise NotFoundError(f"brand {slug!r} not found")
    return brand, is_admin
