"""The audit log: services record events inside their own transaction; admins read them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from studio.db import repositories as repo
from studio.db.models import AuditEvent
from studio.services.permissions import require_admin
from studio.services.views import Actor, AuditEventView


def record(
    session: Session, actor: Actor | str, action: str, target: str | None = None, **details: Any
) -> None:
    """Add an audit event to ``session``'s transaction. Never pass secrets in ``details``."""
    who = actor if isinstance(actor, str) else actor.username
    repo.add_event(session, who, action, target, details)


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
            events = repo.recent_events(session, max(1, min(limit, 10_000)), action, target)
            return [_view(e) for e in events]
