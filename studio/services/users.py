"""Users, roles and passwords (argon2). Sign-ins and their lockout are in :mod:`studio.services.logins`.

A user's sessions end (``session_epoch`` moves) when an admin resets their password, disables them or takes
a role away, and when they change their own password."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from sqlalchemy.orm import Session, sessionmaker

from studio.config import Settings
from studio.db import repositories as repo
from studio.db import throttles
from studio.db.base import utcnow
from studio.db.models import ROLES, User, UserRole
from studio.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    ValidationError,
)
from studio.services.audit import capped, record
from studio.services.logins import (  # noqa: F401 (locked_message: re-exported)
    LOCAL_CLIENT,
    MAX_USERNAME,
    LoginService,
    locked_message,
    normalise_username,
)
from studio.services.permissions import actor_user, require_admin
from studio.services.views import SYSTEM, Actor, AdminBootstrap, UserView

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,31}$")
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
DEFAULT_ADMIN = "admin"


def generate_password() -> str:
    """A random password for a new account (about 96 bits)."""
    return secrets.token_urlsafe(12)


def check_username(username: str) -> str:
    """A new account's name in its stored form (lowercase: names are case-insensitive)."""
    name = normalise_username(username) if isinstance(username, str) else ""
    if not USERNAME_RE.match(name):
        shown = capped(str(username), MAX_USERNAME + 8)
        raise ValidationError("username", f"{shown!r}: use 2-{MAX_USERNAME} letters, digits, '.', '_' or '-'")
    return name


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


def _view(user: User, locked_until: datetime | None = None) -> UserView:
    """``locked_until``: the latest lock of the name from some client address (see ``LoginService``)."""
    return UserView(
        id=user.id,
        username=user.username,
        roles=tuple(sorted(user.role_names)),
        disabled=user.disabled,
        locked_until=locked_until,
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
        self.logins = LoginService(sessions, settings, self._hasher)

    # ------------------------------------------------------------------------------------------- login

    def authenticate(self, username: str, password: str, client: str | None = None) -> UserView:
        """Check a login (see :class:`LoginService`); returns the account, its name as stored."""
        signed = self.logins.sign_in(username, password, client)
        with self._sessions() as session:
            return _view(self._find(session, signed.username))

    def check_login(self, username: str, password: str) -> bool:
        """``authenticate`` as a yes/no answer."""
        try:
            self.logins.sign_in(username, password)
        except (AuthenticationError, ValidationError):
            return False
        return True

    # --------------------------------------------------------------------------------------- reading

    def get_user(self, actor: Actor, username: str) -> UserView:
        """One user; anyone may read themself, admins anyone."""
        with self._sessions() as session:
            me = actor_user(session, actor)
            if me is None or me.username != normalise_username(username):
                require_admin(session, actor)
            return self._view_now(session, self._find(session, username))

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
            locks = throttles.locks_by_name(session, utcnow())
            return [_view(u, locks.get(u.username)) for u in repo.all_users(session)]

    # ---------------------------------------------------------------------------------------- admin

    def add_user(self, actor: Actor, username: str, roles: Iterable[str], password: str) -> UserView:
        """Create an account (admins only)."""
        username, chosen, password = check_username(username), check_roles(roles), check_password(password)
        with self._sessions.begin() as session:
            require_admin(session, actor)  # before the (costly) hash: a refused caller costs nothing
            if repo.user_by_name(session, username) is not None:
                raise ConflictError(f"user {username!r} already exists")
            password_hash = self._hasher.hash(password)
            user = User(username=username, password_hash=password_hash, disabled=False, session_epoch=0)
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
            taken = set(before) - set(chosen)
            if taken:  # what they may do shrank: their sessions end
                user.session_epoch += 1
            session.flush()
            record(
                session,
                actor,
                "user.roles_set",
                user.username,
                before=list(before),
                after=list(chosen),
                sessions_ended=bool(taken),
            )
            return self._view_now(session, user)

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
            was_locked = bool(throttles.locks_by_name(session, utcnow(), user.username))
            throttles.clear_name(session, user.username)
            record(session, actor, "user.unlocked", user.username, was_locked=was_locked)
            return _view(user)

    def reset_password(self, actor: Actor, username: str, new_password: str) -> UserView:
        """Set a user's password, clear their lockout and end their sessions (admins only; users change
        their own with :meth:`change_own_password`, which asks for the current one)."""
        new_password = check_password(new_password)
        with self._sessions.begin() as session:
            require_admin(session, actor)  # before the (costly) hash
            user = self._find(session, username)
            user.password_hash = self._hasher.hash(new_password)
            user.session_epoch += 1
            throttles.clear_name(session, user.username)
            record(session, actor, "user.password_reset", user.username)
            return _view(user)

    def change_own_password(
        self, actor: Actor, current_password: str, new_password: str, client: str | None = None
    ) -> UserView:
        """A user changes their own password: the current one is checked as a sign-in is (a wrong one
        counts towards the lockout). Their sessions end, this one too: they sign in with the new one."""
        new_password = check_password(new_password)
        with self._sessions() as session:
            me = actor_user(session, actor)
        if me is None:
            raise ValidationError("user", "the system actor has no password: use reset_password")
        client = str(client or LOCAL_CLIENT)[:64]
        try:
            self.logins.verify_counted(me.username, current_password or "", client, audit_as="password")
        except AuthenticationError as error:
            message = str(error).replace("wrong username or password", "is wrong")
            raise ValidationError("current password", message) from None
        with self._sessions.begin() as session:
            user = self._find(session, me.username)
            user.password_hash = self._hasher.hash(new_password)
            user.session_epoch += 1
            throttles.clear(session, (user.username, client))
            record(session, actor, "user.password_changed", user.username)
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
                user = User(username=name, password_hash="", disabled=False, session_epoch=0)
                session.add(user)
            else:  # an 'admin' account exists but lost its role or was disabled: restore it
                user.disabled = False
                user.session_epoch += 1
                throttles.clear_name(session, name)
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
            if disabled and not user.disabled:  # their sessions end
                user.session_epoch += 1
            user.disabled = disabled
            if not disabled:  # enabling someone means letting them in: a lockout goes too
                throttles.clear_name(session, user.username)
            record(session, actor, "user.disabled" if disabled else "user.enabled", user.username)
            return self._view_now(session, user)

    @staticmethod
    def _find(session: Session, username: str) -> User:
        user = repo.user_by_name(session, username)
        if user is None:
            raise NotFoundError(f"user {capped(str(username), MAX_USERNAME + 8)!r} not found")
        return user

    @staticmethod
    def _view_now(session: Session, user: User) -> UserView:
        """The view with the name's current lock (from any client address)."""
        return _view(user, throttles.locks_by_name(session, utcnow(), user.username).get(user.username))

    def _keep_an_admin(self, session: Session, user: User) -> None:
        if not user.disabled and repo.active_admin_count(session) <= 1:
            raise ConflictError(f"{user.username} is the last active admin; make another admin first")
