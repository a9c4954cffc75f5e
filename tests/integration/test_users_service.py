"""Users: argon2 passwords, lockout, audit of every login, roles as a set, permission checks in services."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from argon2 import PasswordHasher, profiles
from helpers import snapshot
from sqlalchemy import select, update

from studio.config import Settings
from studio.db.base import utcnow
from studio.db.login_models import LoginThrottle
from studio.db.models import User
from studio.errors import AuthenticationError, ConflictError, PermissionDeniedError, ValidationError
from studio.services.container import build_services
from studio.services.views import SYSTEM, Actor

PASSWORD = "correct horse"


@pytest.fixture
def people(services):  # noqa: ANN001, ANN201
    services.users.add_user(SYSTEM, "ada", ["admin"], PASSWORD)
    services.users.add_user(SYSTEM, "mia", ["marketer"], PASSWORD)
    services.users.add_user(SYSTEM, "rex", ["reviewer", "marketer"], PASSWORD)
    return services


def login_events(services) -> list:  # noqa: ANN001
    return services.audit.list_events(SYSTEM, action="login")


def test_passwords_are_stored_as_argon2_hashes(people) -> None:  # noqa: ANN001
    with people.sessions() as session:
        stored = session.scalar(select(User.password_hash).where(User.username == "mia"))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_login_succeeds_and_is_audited_without_the_password(people) -> None:  # noqa: ANN001
    user = people.users.authenticate("mia", PASSWORD)
    assert user.username == "mia" and user.roles == ("marketer",) and user.last_login_at is not None
    with pytest.raises(AuthenticationError, match="wrong username or password"):
        people.users.authenticate("mia", "hunter2-guess")
    with pytest.raises(AuthenticationError, match="wrong username or password"):
        people.users.authenticate("nobody", "whatever1")
    events = login_events(people)
    assert [(e.action, e.target) for e in events] == [
        ("login.failed", "nobody"),
        ("login.failed", "mia"),
        ("login.succeeded", "mia"),
    ]
    dumped = json.dumps([e.details for e in events])
    assert PASSWORD not in dumped and "hunter2-guess" not in dumped
    assert events[1].details["reason"] == "wrong password"


def test_five_failures_lock_the_account_then_the_lock_expires(people) -> None:  # noqa: ANN001
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            people.users.authenticate("mia", "bad password")
    with pytest.raises(AuthenticationError, match="locked"):
        people.users.authenticate("mia", PASSWORD)  # even the right password is refused now
    assert people.users.check_login("mia", PASSWORD) is False
    locked = people.users.get_user(SYSTEM, "mia").locked_until
    assert locked is not None
    assert timedelta(minutes=14) < locked - utcnow() <= timedelta(minutes=15)
    assert login_events(people)[0].details["reason"] == "locked"
    with people.sessions.begin() as session:  # time passes (the lock is per name and client address)
        session.execute(
            update(LoginThrottle).where(LoginThrottle.username == "mia").values(locked_until=utcnow())
        )
    assert people.users.authenticate("mia", PASSWORD).locked_until is None


def test_four_failures_then_success_resets_the_count(people) -> None:  # noqa: ANN001
    for _ in range(4):
        assert people.users.check_login("mia", "bad password") is False
    assert people.users.check_login("mia", PASSWORD) is True
    for _ in range(4):
        assert people.users.check_login("mia", "bad password") is False
    assert people.users.check_login("mia", PASSWORD) is True


def test_reset_password_clears_a_lockout(people) -> None:  # noqa: ANN001
    for _ in range(5):
        people.users.check_login("mia", "bad password")
    people.users.reset_password(SYSTEM, "mia", "a new password")
    assert people.users.check_login("mia", "a new password")
    assert not people.users.check_login("mia", PASSWORD)


def test_disabled_user_is_refused_at_login_and_in_services(people) -> None:  # noqa: ANN001
    people.users.disable(Actor.user("ada"), "rex")
    with pytest.raises(AuthenticationError, match="disabled"):
        people.users.authenticate("rex", PASSWORD)
    with pytest.raises(PermissionDeniedError):
        people.brands.list_brands(Actor.user("rex"))
    people.users.enable(SYSTEM, "rex")
    assert people.users.check_login("rex", PASSWORD)


def test_roles_are_a_set_and_unknown_roles_are_refused(people) -> None:  # noqa: ANN001
    assert people.users.set_roles(SYSTEM, "mia", ["reviewer", "marketer", "reviewer"]).roles == (
        "marketer",
        "reviewer",
    )
    before = snapshot(people)
    with pytest.raises(ValidationError, match="unknown role 'wizard'") as err:
        people.users.set_roles(SYSTEM, "mia", ["marketer", "wizard"])
    assert err.value.field == "role"
    with pytest.raises(ValidationError, match="role"):
        people.users.add_user(SYSTEM, "zed", ["wizard"], PASSWORD)
    assert snapshot(people) == before


def test_bad_usernames_passwords_and_duplicates(people) -> None:  # noqa: ANN001
    before = snapshot(people)
    with pytest.raises(ValidationError, match="username"):
        people.users.add_user(SYSTEM, "Bad Name", ["marketer"], PASSWORD)
    with pytest.raises(ValidationError, match="password"):
        people.users.add_user(SYSTEM, "shorty", ["marketer"], "short")
    with pytest.raises(ConflictError, match="already exists"):
        people.users.add_user(SYSTEM, "mia", ["marketer"], PASSWORD)
    assert snapshot(people) == before


@pytest.mark.parametrize(
    "call",
    [
        lambda s, a: s.users.list_users(a),
        lambda s, a: s.users.add_user(a, "newbie", ["admin"], PASSWORD),
        lambda s, a: s.users.set_roles(a, "mia", ["admin"]),
        lambda s, a: s.users.disable(a, "ada"),
        lambda s, a: s.users.reset_password(a, "ada", "taken over!"),
        lambda s, a: s.users.get_user(a, "ada"),
        lambda s, a: s.audit.list_events(a),
    ],
    ids=["list", "add", "set-roles", "disable", "reset-password", "get-other", "audit"],
)
def test_marketer_cannot_call_admin_user_methods(people, call) -> None:  # noqa: ANN001
    before = snapshot(people)
    with pytest.raises(PermissionDeniedError):
        call(people, Actor.user("mia"))
    assert snapshot(people) == before


class CountingHasher(PasswordHasher):
    """The real argon2 hasher (cheapest profile) that counts its ``hash`` calls."""

    def __init__(self) -> None:
        cheapest = profiles.CHEAPEST
        super().__init__(
            time_cost=cheapest.time_cost,
            memory_cost=cheapest.memory_cost,
            parallelism=cheapest.parallelism,
            hash_len=cheapest.hash_len,
            salt_len=cheapest.salt_len,
        )
        self.hashes = 0

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        self.hashes += 1
        return super().hash(password, salt=salt)


@pytest.mark.parametrize(
    "call",
    [
        lambda s, a: s.users.add_user(a, "newbie", ["admin"], PASSWORD),
        lambda s, a: s.users.reset_password(a, "ada", "taken over!"),
    ],
    ids=["add", "reset-password"],
)
def test_a_refused_caller_is_refused_before_any_password_is_hashed(settings, call) -> None:  # noqa: ANN001
    hasher = CountingHasher()
    built = build_services(settings, password_hasher=hasher)
    try:
        built.users.add_user(SYSTEM, "ada", ["admin"], PASSWORD)
        built.users.add_user(SYSTEM, "mia", ["marketer"], PASSWORD)
        hashes, before = hasher.hashes, snapshot(built)
        assert hashes == 2
        with pytest.raises(PermissionDeniedError):
            call(built, Actor.user("mia"))
        assert hasher.hashes == hashes
        assert snapshot(built) == before
        call(built, Actor.user("ada"))  # an admin's call hashes once
        assert hasher.hashes == hashes + 1
    finally:
        built.close()


def test_roles_are_read_from_the_database_on_every_call(people) -> None:  # noqa: ANN001
    ada = Actor.user("ada")
    assert len(people.users.list_users(ada)) == 3
    people.users.set_roles(SYSTEM, "rex", ["admin"])
    people.users.set_roles(SYSTEM, "ada", ["marketer"])
    with pytest.raises(PermissionDeniedError):
        people.users.list_users(ada)
    assert people.users.whoami(ada).roles == ("marketer",)


def test_the_last_admin_cannot_be_demoted_or_disabled(people) -> None:  # noqa: ANN001
    with pytest.raises(ConflictError, match="last active admin"):
        people.users.set_roles(SYSTEM, "ada", ["marketer"])
    with pytest.raises(ConflictError, match="last active admin"):
        people.users.disable(SYSTEM, "ada")
    people.users.set_roles(SYSTEM, "rex", ["admin"])
    people.users.disable(SYSTEM, "ada")  # another admin exists
    with pytest.raises(ConflictError):
        people.users.disable(SYSTEM, "rex")


def test_ensure_admin_creates_one_admin_once_with_a_printed_password(services) -> None:  # noqa: ANN001
    first = services.users.ensure_admin()
    assert first.created and first.username == "admin" and first.password and len(first.password) >= 12
    assert services.users.check_login("admin", first.password)
    assert services.users.ensure_admin().created is False
    assert first.password not in repr(first)


def test_ensure_admin_takes_the_password_from_the_environment(studio_home) -> None:  # noqa: ANN001
    settings = Settings.from_env({"STUDIO_HOME": str(studio_home), "STUDIO_ADMIN_PASSWORD": "from the env"})
    services = build_services(settings)
    try:
        result = services.users.ensure_admin()
        assert result.created and result.password is None
        assert services.users.check_login("admin", "from the env")
    finally:
        services.close()
