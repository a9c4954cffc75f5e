"""The audit log: services record events inside their own transaction; admins read them."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from studio.db import repositories as repo
from studio.db.models import AuditEvent
from studio.services.permissions import require_admin
from studio.services.views import Actor, AuditEventView

#: The most characters the audit keeps of a name, a target or a text detail (the rest is cut, marked "…"):
#: an event's size does not grow with what a caller sends (a 900 KB username is not stored).
MAX_ACTOR, MAX_TARGET, MAX_DETAIL = 64, 200, 500


def capped(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (the last one "…" when cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _capped_value(value: Any) -> Any:
    if isinstance(value, str):
        return capped(value, MAX_DETAIL)
    if isinstance(value, list | tuple):
        return [_capped_value(v) for v in list(value)[:50]]
    if isinstance(value, dict):
        return {capped(str(k), 64): _capped_value(v) for k, v in list(value.items())[:50]}
    return value


def record(
    session: Session, actor: Actor | str, action: str, target: str | None = None, **details: Any
) -> None:
    """Add an audit event to ``session``'s transaction. Never pass secrets in ``details``. Names, targets
    and text details are capped (:data:`MAX_ACTOR`, :data:`MAX_TARGET`, :data:`MAX_DETAIL`)."""
    who = actor if isinstance(actor, str) else actor.username
    target = None if target is None else capped(target, MAX_TARGET)
    repo.add_event(session, capped(who, MAX_ACTOR), action, target, _capped_value(details))


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
