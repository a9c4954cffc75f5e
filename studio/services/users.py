"""Users, roles, passwords (argon2) and logins with lockout. Every login attempt is audited."""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.orm import Session, sessionmaker

from studio.config import Settings
from studio.db import repositories as repo
from studio.db.base import utcnow
from studio.db.models import ROLES, User, UserRole
from studio.errors import (
    AccountDisabledError,
    AccountLockedError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from studio.services.audit import record
from studio.services.permissions import actor_user, require_admin
from studio.services.views import SYSTEM, Actor, AdminBootstrap, UserView

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,31}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
DEFAULT_ADMIN = "admin"
_LOCK_HISTORY = 200  # failed-login events read back for a name with no account


def locked_message(until: datetime, now: datetime) -> str:
    """What a locked-out login is told: how long the lock lasts (whole minutes, rounded up)."""
    minutes = max(1, math.ceil((until - now).total_seconds() / 60))
    return (
        f"this account is locked after too many failed sign-ins: try again in {minutes} "
        f"minute{'s' if minutes != 1 else ''}, or ask an admin to unlock it"
    )


def generate_password() -> str:
    """A random password for a new account (about 96 bits)."""
    return secrets.token_urlsafe(12)


def check_username(username: str) -> str:
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        raise ValidationError(
            "username", f"{username!r}: use 2-32 lowercase letters, digits, '.', '_' or '-'"
        )
    return username


def check_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """Validate a set of roles; returns them sorted."""
    chosen = {str(r).strip().lower() for r in roles}
    if not chosen:
        raise ValidationError("role", f"give at least one role ({', '.join(ROLES)})")
    unknown = sorted(chosen - set(ROLES))
    if unknown:
        raise ValidationError("role", f"unknown role {unknown[0]!r} (choose from {', '.join(ROLES)})")
    return tuple(sorted(chosen))


def check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise ValidationError("password", f"must be at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise ValidationError("password", f"must be at most {MAX_PASSWORD} characters")
    return password


@dataclass(frozen=True)
class StudioOverview:
    """What the app shell says the next step is from: the caller's account (roles, brands); for admins
    also how many users and brands the studio has (None for others)."""

    me: UserView
    user_count: int | None = None
    brand_count: int | None = None


def _view(user: User) -> UserView:
    return UserView(
        id=user.id,
        username=user.username,
        roles=tuple(sorted(user.role_names)),
        disabled=user.disabled,
        locked_until=user.locked_until,
        last_login_at=user.last_login_at,
        created_at=user.created_at,
        brands=tuple(sorted(m.brand.slug for m in user.memberships)),
    )


class UserService:
    """Accounts and logins. Admin-only methods check the actor's roles in the database on every call."""

    def __init__(
        self, sessions: sessionmaker[Session], settings: Settings, hasher: PasswordHasher | None = None
    ):
        self._sessions = sessions
        self._settings = settings
        self._hasher = hasher or PasswordHasher()
        self._dummy_hash: str | None = None  # made on first use (hashing costs ~0.1-0.4 s)

    # ------------------------------------------------------------------------------------------- login

    def authenticate(self, username: str, password: str) -> UserView:
        """Check a login; raises AuthenticationError (wrong password or unknown user), AccountLockedError or
        AccountDisabledError (the latter only after the right password).

        After ``settings.lockout_attempts`` failures in a row the name is locked for
        ``settings.lockout_minutes``, with a message saying for how long. Names that belong to no account
        lock the same way (counted from the audit log), so the lock message does not tell which names
        exist. Every attempt is audited (never the password).
        """
        name = str(username or "").strip().lower()
        now = utcnow()
        with self._sessions.begin() as session:
            user = repo.user_by_name(session, name) if name else None
            if user is None:
                error = self._unknown_name(session, name, password, now)
            elif user.locked_until is not None and user.locked_until > now:
                record(session, name, "login.failed", name, reason="locked")
                error = AccountLockedError(locked_message(user.locked_until, now))
            elif not self._verify(user.password_hash, password):
                if user.locked_until is not None:  # an expired lock: start counting again
                    user.locked_until, user.failed_attempts = None, 0
                user.failed_attempts += 1
                details: dict[str, object] = {"reason": "wrong password", "failures": user.failed_attempts}
                if user.failed_attempts >= self._settings.lockout_attempts:
                    user.locked_until = now + timedelta(minutes=self._settings.lockout_minutes)
                    details["locked_until"] = user.locked_until.isoformat()
                record(session, name, "login.failed", name, **details)
                error = AuthenticationError("wrong username or password")
            elif user.disabled:
                record(session, name, "login.failed", name, reason="disabled")
                error = AccountDisabledError("this account is disabled: ask an admin to enable it")
            else:
                user.failed_attempts, user.locked_until, user.last_login_at = 0, None, now
                if self._hasher.check_needs_rehash(user.password_hash):
                    user.password_hash = self._hasher.hash(password)
                record(session, name, "login.succeeded", name)
                return _view(user)
        raise error

    def _unknown_name(self, session: Session, name: str, password: str, now: datetime) -> AuthenticationError:
        """A failed login for a name with no account, answered as an account would answer it: the same
        hashing cost, and after as many failures the same lock, for as long (its state is in the audit
        log: the failures since the last lock, and the lock's end)."""
        if not name:
            self._verify(self._dummy_hash_value(), password)
            record(session, "?", "login.failed", None, reason="unknown user")
            return AuthenticationError("wrong username or password")
        failures, locked_until = 0, None
        for event in repo.login_failures(session, name, limit=_LOCK_HISTORY):
            details = event.details or {}
            if details.get("locked_until"):
                locked_until = datetime.fromisoformat(str(details["locked_until"]))
                break
            failures += details.get("reason") == "unknown user"
        if locked_until is not None and locked_until > now:
            record(session, name, "login.failed", name, reason="locked")
            return AccountLockedError(locked_message(locked_until, now))
        self._verify(self._dummy_hash_value(), password)  # same cost as a real check
        extra: dict[str, object] = {}
        if failures + 1 >= self._settings.lockout_attempts:
            extra["locked_until"] = (now + timedelta(minutes=self._settings.lockout_minutes)).isoformat()
        record(session, name, "login.failed", name, reason="unknown user", **extra)
        return AuthenticationError("wrong username or password")

    def _dummy_hash_value(self) -> str:
        self._dummy_hash = self._dummy_hash or self._hasher.hash(secrets.token_hex(8))
        return self._dummy_hash

    def check_login(self, username: str, password: str) -> bool:
        """``authenticate`` as a yes/no answer (Gradio's ``auth=`` callable)."""
        try:
            self.authenticate(username, password)
        except AuthenticationError:
            return False
        return True

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password or "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    # --------------------------------------------------------------------------------------- reading

    def get_user(self, actor: Actor, username: str) -> UserView:
        """One user; anyone may read themself, admins anyone."""
        with self._sessions() as session:
            me = actor_user(session, actor)
            if me is None or me.username != username:
                require_admin(session, actor)
            return _view(self._find(session, username))

    def whoami(self, actor: Actor) -> UserView:
        """The actor's own account, roles as stored now (the UI shows tabs from these)."""
        return self.get_user(actor, actor.username)

    def overview(self, actor: Actor) -> StudioOverview:
        """The actor's own account; for admins, with the studio's user and brand counts."""
        with self._sessions() as session:
            user = actor_user(session, actor) or self._find(session, actor.username)
            if "admin" not in user.role_names:
                return StudioOverview(_view(user))
            return StudioOverview(
                _view(user),
                user_count=len(repo.all_users(session)),
                brand_count=len(repo.brands_visible_to(session, None)),
            )

    def list_users(self, actor: Actor) -> list[UserView]:
        """Every user, by name (admins only)."""
        with self._sessions() as session:
            require_admin(session, actor)
            return [_view(u) for u in repo.all_users(session)]

    # ---------------------------------------------------------------------------------------- admin

    def add_user(self, actor: Actor, username: str, roles: Iterable[str], password: str) -> UserView:
        """Create an account (admins only)."""
        username, chosen, password = check_username(username), check_roles(roles), check_password(password)
        with self._sessions.begin() as session:
            require_admin(session, actor)  # before the (costly) hash: a refused caller costs nothing
            if repo.user_by_name(session, username) is not None:
                raise ConflictError(f"user {username!r} already exists")
            password_hash = self._hasher.hash(password)
            user = User(username=username, password_hash=password_hash, disabled=False, failed_attempts=0)
            user.roles = [UserRole(role=r) for r in chosen]
            session.add(user)
            session.flush()
            record(session, actor, "user.added", username, roles=list(chosen))
            return _view(user)

    def set_roles(self, actor: Actor, username: str, roles: Iterable[str]) -> UserView:
        """Replace a user's roles (admins only; the last active admin keeps the admin role)."""
        chosen = check_roles(roles)
        with self._sessions.begin() as session:
            require_admin(session, actor)
            user = self._find(session, username)
            before = tuple(sorted(user.role_names))
            if "admin" in before and "admin" not in chosen:
                self._keep_an_admin(session, user)
            existing = {r.role: r for r in user.roles}
            user.roles = [existing.get(r) or UserRole(role=r) for r in chosen]
            session.flush()
            record(session, actor, "user.roles_set", username, before=list(before), after=list(chosen))
            return _view(user)

    def disable(self, actor: Actor, username: str) -> UserView:
        """Refuse this user's logins and service calls from now on (admins only)."""
        return self._set_disabled(actor, username, True)

    def enable(self, actor: Actor, username: str) -> UserView:
        """Let a disabled user log in again, and clear any lockout (admins only)."""
        return self._set_disabled(actor, username, False)

    def unlock(self, actor: Actor, username: str) -> UserView:
        """Clear a lockout after too many failed logins, and the failure count (admins only)."""
        with self._sessions.begin() as session:
            require_admin(session, actor)
            user = self._find(session, username)
            was_locked = user.locked_until is not None and user.locked_until > utcnow()
            user.failed_attempts, user.locked_until = 0, None
            record(session, actor, "user.unlocked", username, was_locked=was_locked)
            return _view(user)

    def reset_password(self, actor: Actor, username: str, new_password: str) -> UserView:
        """Set a new password and clear any lockout (admins, or the user themself)."""
        new_password = check_password(new_password)
        with self._sessions.begin() as session:
            me = actor_user(session, actor)
            if me is None or me.username != username:
                require_admin(session, actor)  # before the (costly) hash
            user = self._find(session, username)
            password_hash = self._hasher.hash(new_password)
            user.password_hash, user.failed_attempts, user.locked_until = password_hash, 0, None
            record(session, actor, "user.password_reset", username)
            return _view(user)

    def ensure_admin(self) -> AdminBootstrap:
        """On first start with no enabled admin, create ``admin``.

        Its password is ``STUDIO_ADMIN_PASSWORD`` if set, else a random one returned in the result
        (the caller prints it once; it is stored only as a hash).
        """
        with self._sessions.begin() as session:
            if repo.active_admin_count(session) > 0:
                return AdminBootstrap(created=False, username=None)
            given = self._settings.admin_password
            password = check_password(given) if given else generate_password()
            name = DEFAULT_ADMIN
            user = repo.user_by_name(session, name)
            if user is None:
                user = User(username=name, password_hash="", disabled=False, failed_attempts=0)
                session.add(user)
            else:  # an 'admin' account exists but lost its role or was disabled: restore it
                user.disabled, user.failed_attempts, user.locked_until = False, 0, None
            user.password_hash = self._hasher.hash(password)
            user.roles = [r for r in user.roles if r.role != "admin"] + [UserRole(role="admin")]
            session.flush()
            record(session, SYSTEM, "user.admin_bootstrapped", name, password_from_env=bool(given))
            return AdminBootstrap(created=True, username=name, password=None if given else password)

    # -------------------------------------------------------------------------------------- helpers

    def _set_disabled(self, actor: Actor, username: str, disabled: bool) -> UserView:
        with self._sessions.begin() as session:
            require_admin(session, actor)
            user = self._find(session, username)
            if disabled and not user.disabled and "admin" in user.role_names:
                self._keep_an_admin(session, user)
            user.disabled = disabled
            if not disabled:  # enabling someone means letting them in: a lockout goes too
                user.failed_attempts, user.locked_until = 0, None
            record(session, actor, "user.disabled" if disabled else "user.enabled", username)
            return _view(user)

    @staticmethod
    def _find(session: Session, username: str) -> User:
        user = repo.user_by_name(session, username)
        if user is None:
            raise NotFoundError(f"user {username!r} not found")
        return user

    def _keep_an_admin(self, session: Session, user: User) -> None:
        if not user.disabled and repo.active_admin_count(session) <= 1:
            raise ConflictError(f"{user.username} is the last active admin; make another admin first")
