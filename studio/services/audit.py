"""The audit log: services record events inside their own transaction; admins read them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from studio.db.models import AuditEvent
from studio.services.permissions import require_admin
from studio.services.views import Actor, AuditEventView


def record(
    session: Session, actor: Actor | str, action: str, target: str | None = None, **details: Any
) -> None:
    """Add an audit event to ``session``'s transaction. Never pass secrets in ``details``."""
    who = actor if isinstance(actor, str) else actor.username
    session.add(AuditEvent(actor=who, action=action, target=target, details=details))


def _view(event: AuditEvent) -> AuditEventView:
    return AuditEventView(
        id=event.id,
        at=event.at,
        actor=event.actor,
        action=event.action,
        target=event.target,
        details=dict(event.details or {}),
    )


class AuditService:
    """Read the audit log (admins only)."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def list_events(
        self, actor: Actor, *, limit: int = 100, action: str | None = None, target: str | None = None
    ) -> list[AuditEventView]:
        """Newest first; ``action`` matches a prefix (``login`` finds ``login.failed``)."""
        with self._sessions() as session:
            require_admin(session, actor)
            query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(max(1, min(limit, 10_000)))
            if action:
                query = query.where(AuditEvent.action.startswith(action, autoescape=True))
            if target:
                query = query.where(AuditEvent.target == target)
            return [_view(e) for e in session.scalars(query)]
