"""Sign-ins: the password check behind the login form, its lockout and the sessions it starts.

Failures are counted per (name, client address) and per client address (over every name), in
``login_throttles``. A name's failure is counted *before* the password is checked, with one conditional
UPDATE (``failures < limit``), so no number of parallel guesses gets more than ``lockout_attempts`` password
checks for a name from one address; a right password gives the count back. An address's count over every
name (``lockout_client_attempts``, against one address trying many names) is checked before and counted
after a wrong password, so many people signing in at once from one address (an office behind one proxy)
are not refused while their checks run; parallel guesses can pass that count by at most the number
answered at once. A lock from one address leaves other addresses alone: a stranger who locks ``admin`` out
of their own address does not lock the admin out of theirs.

Every answer costs one password hash (locked, unknown name, wrong password alike), so the time an answer
takes does not tell which it was. Names with no account count and lock the same way, so the lock message does
not tell which names exist either.
"""

from __future__ import annotations

import math
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from studio.config import Settings
from studio.db import repositories as repo
from studio.db import throttles
from studio.db.base import utcnow
from studio.db.login_models import ANY_NAME
from studio.db.models import User
from studio.errors import (
    AccountDisabledError,
    AccountLockedError,
    AuthenticationError,
    ValidationError,
)
from studio.services.audit import record

#: The longest username (accounts are 2-32 characters); a longer one is refused before any work.
MAX_USERNAME = 32
#: The client address of a sign-in with none (the CLI, tests).
LOCAL_CLIENT = "local"
_PRUNE_EVERY_S = 600.0


def normalise_username(username: object) -> str:
    """The one stored form of a username: trimmed, lowercase (names are case-insensitive)."""
    return str(username or "").strip().lower()


def locked_message(until: datetime, now: datetime) -> str:
    """What a locked-out login is told: how long the lock lasts (whole minutes, rounded up)."""
    minutes = max(1, math.ceil((until - now).total_seconds() / 60))
    return (
        f"this account is locked after too many failed sign-ins: try again in {minutes} "
        f"minute{'s' if minutes != 1 else ''}, or ask an admin to unlock it"
    )


class _Locked(Exception):
    """A counter is at its limit (rolls the reservation back)."""


@dataclass(frozen=True)
class SignedIn:
    """A successful sign-in: the account (by id and its stored name) and the session epoch it started in."""

    user_id: int
    username: str
    session_epoch: int


class LoginService:
    """Password checks with lockout; every attempt is audited (never the password)."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, hasher: PasswordHasher) -> None:
        self._sessions = sessions
        self._settings = settings
        self._hasher = hasher
        self._dummy_hash: str | None = None  # made on first use (hashing costs ~0.1-0.4 s)
        self._dummy_lock = threading.Lock()
        self._pruned_at = 0.0

    # --------------------------------------------------------------------------------------- sign in

    def sign_in(self, username: str, password: str, client: str | None = None) -> SignedIn:
        """Check a login from ``client`` (an address; None: this machine). Raises ValidationError (a name
        too long), AuthenticationError (wrong password or unknown name), AccountLockedError, or
        AccountDisabledError (only after the right password)."""
        name = self.checked_name(username)
        client = str(client or LOCAL_CLIENT)[:64]
        self.verify_counted(name, password, client, audit_as="login")
        with self._sessions.begin() as session:
            user = repo.user_by_name(session, name)
            if user is None:  # removed since the check
                raise AuthenticationError("wrong username or password")
            if user.disabled:
                throttles.release(session, (name, client), self._settings.lockout_attempts)
                record(session, name, "login.failed", name, reason="disabled", client=client)
                error = AccountDisabledError("this account is disabled: ask an admin to enable it")
            else:
                throttles.clear(session, (name, client))
                user.last_login_at = utcnow()
                if self._hasher.check_needs_rehash(user.password_hash):
                    user.password_hash = self._hasher.hash(password)
                record(session, name, "login.succeeded", name, client=client)
                return SignedIn(user.id, user.username, user.session_epoch)
        raise error

    def checked_name(self, username: str) -> str:
        """``username`` normalised; a name over :data:`MAX_USERNAME` is refused (audited, capped)."""
        name = normalise_username(username)
        if len(name) > MAX_USERNAME:
            with self._sessions.begin() as session:
                record(session, "?", "login.failed", name, reason="username too long", length=len(name))
            raise ValidationError("username", f"must be at most {MAX_USERNAME} characters")
        return name

    def verify_counted(self, name: str, password: str, client: str, audit_as: str) -> None:
        """Check ``name``'s password with the lockout: raises unless it is an account's right password.
        Failures are audited as ``<audit_as>.failed``."""
        now = utcnow()
        with self._sessions() as session:
            user = repo.user_by_name(session, name) if name else None
            stored = user.password_hash if user is not None else None
        keys = [(ANY_NAME, client), (name, client)] if name else [(ANY_NAME, client)]
        failures = self._reserve(keys, now)
        right = self._verify(stored or self._dummy_hash_value(), password)  # the same cost in every case
        if stored is not None and right and failures is not None:
            return
        actor = name or "?"
        error: AuthenticationError = AuthenticationError("wrong username or password")
        with self._sessions.begin() as session:
            if failures is not None:  # a wrong password: the address's count over every name
                lock = now + timedelta(minutes=self._settings.lockout_minutes)
                limit = self._settings.lockout_client_attempts
                throttles.count(session, (ANY_NAME, client), limit, lock, now, compare=False)
            if failures is None:
                until = throttles.lock_end(session, keys, now) or now
                record(session, actor, f"{audit_as}.failed", name or None, reason="locked", client=client)
                error = AccountLockedError(locked_message(until, now))
            else:
                details: dict[str, object] = {
                    "reason": "wrong password" if stored is not None else "unknown user",
                    "client": client,
                }
                if name:
                    details["failures"] = failures
                    if failures >= self._settings.lockout_attempts:
                        lock = now + timedelta(minutes=self._settings.lockout_minutes)
                        details["locked_until"] = lock.isoformat()
                record(session, actor, f"{audit_as}.failed", name or None, **details)
        raise error

    def _reserve(self, keys: list[tuple[str, str]], now: datetime) -> int | None:
        """None when the address (``keys[0]``) or the name from it (``keys[1]``) is locked; else count this
        attempt as a failure of the name (given back if the password is right) and return the name's count
        (0 without a name)."""
        settings = self._settings
        window = timedelta(minutes=settings.lockout_minutes)
        lock = now + window
        counts: list[int] = []
        try:
            with self._sessions.begin() as session:  # the address's lock and the name's count together
                self._prune(session, now)
                throttles.ensure(session, keys, now)
                throttles.forget_stale(session, keys, now, window)
                if throttles.lock_end(session, keys[:1], now) is not None:
                    raise _Locked
                for key in keys[1:]:
                    count = throttles.count(session, key, settings.lockout_attempts, lock, now, compare=True)
                    if count is None:
                        raise _Locked
                    counts.append(count)
        except _Locked:
            return None
        return counts[0] if counts else 0

    def _prune(self, session: Session, now: datetime) -> None:
        """Now and then, drop counters nobody has touched for a day (unknown names would pile up)."""
        if time.monotonic() - self._pruned_at < _PRUNE_EVERY_S:
            return
        self._pruned_at = time.monotonic()
        throttles.prune(session, now - timedelta(days=1), now)

    # ------------------------------------------------------------------------------------- sessions

    def session_user(self, user_id: int, epoch: int) -> str | None:
        """The stored name of a session's user while the session stands: the account exists, is enabled
        and its session epoch is still ``epoch``; else None (the session has ended)."""
        with self._sessions() as session:
            row = session.execute(
                select(User.username, User.disabled, User.session_epoch).where(User.id == user_id)
            ).first()
        if row is None or row.disabled or row.session_epoch != epoch:
            return None
        return row.username

    # ------------------------------------------------------------------------------------- hashing

    def verify(self, password_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``password_hash`` (no lockout: the caller counts)."""
        return self._verify(password_hash, password)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password or "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _dummy_hash_value(self) -> str:
        with self._dummy_lock:
            self._dummy_hash = self._dummy_hash or self._hasher.hash(secrets.token_hex(8))
            return self._dummy_hash
