"""Login failure counters (``login_throttles``): each change is one conditional SQL statement, so parallel
logins cannot read a count and write back a stale one. Portable to PostgreSQL (``INSERT .. ON CONFLICT DO
NOTHING``, ``UPDATE .. RETURNING``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, case, delete, func, literal, or_, select, update
from sqlalchemy.orm import Session

from studio.db.base import UTCDateTime
from studio.db.login_models import LoginThrottle

Key = tuple[str, str]  # (username or ANY_NAME, client address)


def _where(key: Key):  # noqa: ANN202
    return and_(LoginThrottle.username == key[0], LoginThrottle.client == key[1])


def ensure(session: Session, keys: Sequence[Key], now: datetime) -> None:
    """Make sure each key has a row (a concurrent insert of the same key is not an error). SQLite and
    PostgreSQL both have ``INSERT .. ON CONFLICT DO NOTHING``; the studio supports those two."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise NotImplementedError(f"login throttles need SQLite or PostgreSQL, not {dialect}")
    rows = [{"username": u, "client": c, "failures": 0, "updated_at": now} for u, c in keys]
    session.execute(insert(LoginThrottle).values(rows).on_conflict_do_nothing())


def forget_stale(session: Session, keys: Sequence[Key], now: datetime, window: timedelta) -> None:
    """Start counting again for a key whose lock ran out, or whose last failure is older than ``window``."""
    ran_out = and_(LoginThrottle.locked_until.is_not(None), LoginThrottle.locked_until <= now)
    quiet = and_(LoginThrottle.locked_until.is_(None), LoginThrottle.updated_at <= now - window)
    session.execute(
        update(LoginThrottle)
        .where(or_(*(_where(k) for k in keys)), or_(ran_out, quiet))
        .values(failures=0, locked_until=None)
    )


def count(
    session: Session, key: Key, limit: int, lock_until: datetime, now: datetime, *, compare: bool
) -> int | None:
    """Count one more failure for ``key``; the count that reaches ``limit`` also sets the lock. With
    ``compare``, only while the count is under ``limit`` (else None: locked): one statement, so the compare
    and the increment cannot be split. Returns the new count."""
    locks = LoginThrottle.failures + 1 >= limit
    under = LoginThrottle.failures < limit if compare else LoginThrottle.failures >= 0
    statement = (
        update(LoginThrottle)
        .where(_where(key), under)
        .values(
            failures=LoginThrottle.failures + 1,
            updated_at=now,
            locked_until=case((locks, literal(lock_until, UTCDateTime())), else_=LoginThrottle.locked_until),
        )
        .returning(LoginThrottle.failures)
    )
    return session.scalar(statement)


def release(session: Session, key: Key, limit: int) -> None:
    """Take back one reserved failure (not a wrong password after all); below ``limit`` the lock goes."""
    session.execute(
        update(LoginThrottle)
        .where(_where(key), LoginThrottle.failures > 0)
        .values(
            failures=LoginThrottle.failures - 1,
            locked_until=case((LoginThrottle.failures - 1 < limit, None), else_=LoginThrottle.locked_until),
        )
    )


def clear(session: Session, key: Key) -> None:
    """Forget ``key``'s failures (a successful login)."""
    session.execute(delete(LoginThrottle).where(_where(key)))


def clear_name(session: Session, username: str) -> int:
    """Forget a name's failures from every client address (an admin's unlock); returns rows removed."""
    return session.execute(delete(LoginThrottle).where(LoginThrottle.username == username)).rowcount or 0


def lock_end(session: Session, keys: Sequence[Key], now: datetime) -> datetime | None:
    """The latest lock end among ``keys`` still in the future, or None."""
    query = select(func.max(LoginThrottle.locked_until)).where(
        or_(*(_where(k) for k in keys)), LoginThrottle.locked_until > now
    )
    return session.scalar(query)  # max() keeps the column's type: an aware UTC datetime


def locks_by_name(session: Session, now: datetime, username: str | None = None) -> dict[str, datetime]:
    """Each name locked from some client address now, with its latest lock end (or only ``username``'s)."""
    query = (
        select(LoginThrottle.username, func.max(LoginThrottle.locked_until))
        .where(LoginThrottle.locked_until > now)
        .group_by(LoginThrottle.username)
    )
    if username is not None:
        query = query.where(LoginThrottle.username == username)
    return {name: end for name, end in session.execute(query) if end is not None}


def prune(session: Session, before: datetime, now: datetime) -> int:
    """Delete rows untouched since ``before`` whose lock (if any) has ended; returns how many."""
    unlocked = or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until <= now)
    statement = delete(LoginThrottle).where(LoginThrottle.updated_at < before, unlocked)
    return session.execute(statement).rowcount or 0
