"""Issue 15, item 6: a lockout is told, with how long it lasts, and an admin can lift it (Unlock, or Enable,
which also clears it). A name with no account locks the same way, so the lock message does not tell which
names exist. Real SQLite file; the sign-in page's answer is checked over HTTP against the UI as ``app.py``
builds it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from live_server import (
    DEMO_PASSWORD,
    demo_server_fixture,  # noqa: F401 (the demo_server fixture)
)
from typer.testing import CliRunner

from studio.errors import AccountDisabledError, AccountLockedError, AuthenticationError
from studio.services.views import SYSTEM, Actor

PASSWORD = "correct horse"


def fail_five_times(services: Any, name: str) -> None:
    for attempt in range(5):
        with pytest.raises(AuthenticationError, match="wrong username or password"):
            services.users.authenticate(name, f"bad password {attempt}")


def test_a_locked_account_is_told_for_how_long_and_unlock_lifts_it(services: Any) -> None:
    services.users.add_user(SYSTEM, "mia", ["marketer"], PASSWORD)
    services.users.add_user(SYSTEM, "ada", ["admin"], PASSWORD)
    fail_five_times(services, "mia")
    with pytest.raises(AccountLockedError, match=r"locked .*try again in 15 minutes"):
        services.users.authenticate("mia", PASSWORD)
    with pytest.raises(Exception, match="may not"):
        services.users.unlock(Actor.user("mia"), "mia")  # admins only
    assert services.users.unlock(Actor.user("ada"), "mia").locked_until is None
    assert services.users.authenticate("mia", PASSWORD).username == "mia"
    unlocked = services.audit.list_events(SYSTEM, action="user.unlocked")
    assert [(e.actor, e.target, e.details["was_locked"]) for e in unlocked] == [("ada", "mia", True)]


def test_enable_also_clears_the_lock(services: Any) -> None:
    services.users.add_user(SYSTEM, "mia", ["marketer"], PASSWORD)
    fail_five_times(services, "mia")
    services.users.disable(SYSTEM, "mia")
    assert services.users.enable(SYSTEM, "mia").locked_until is None
    assert services.users.check_login("mia", PASSWORD)


def test_a_name_with_no_account_locks_like_an_account(services: Any) -> None:
    services.users.add_user(SYSTEM, "mia", ["marketer"], PASSWORD)
    answers: dict[str, list[str]] = {}
    for name in ("mia", "ghost"):
        fail_five_times(services, name)
        with pytest.raises(AccountLockedError) as locked:
            services.users.authenticate(name, PASSWORD)
        answers[name] = [str(locked.value)]
    assert answers["mia"] == answers["ghost"]
    assert services.users.check_login("ghost2", "x") is False  # other names are not affected


def test_disabled_is_said_only_to_whoever_knows_the_password(services: Any) -> None:
    services.users.add_user(SYSTEM, "rex", ["reviewer"], PASSWORD)
    services.users.disable(SYSTEM, "rex")
    with pytest.raises(AuthenticationError, match="wrong username or password") as wrong:
        services.users.authenticate("rex", "not the password")
    assert not isinstance(wrong.value, AccountDisabledError)
    with pytest.raises(AccountDisabledError, match="disabled"):
        services.users.authenticate("rex", PASSWORD)


def test_studio_users_unlock(services: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from studio.cli import app

    services.users.add_user(SYSTEM, "mia", ["marketer"], PASSWORD)
    fail_five_times(services, "mia")
    monkeypatch.setenv("STUDIO_HOME", str(services.settings.home))
    monkeypatch.setenv("STUDIO_DATABASE_URL", services.settings.database_url)
    result = CliRunner().invoke(app, ["users", "unlock", "mia"])
    assert result.exit_code == 0 and "unlocked mia" in result.stdout
    assert services.users.check_login("mia", PASSWORD)
    missing = CliRunner().invoke(app, ["users", "unlock", "nobody"])
    assert missing.exit_code == 1 and "not found" in missing.stderr


def test_the_sign_in_page_answers_a_lockout_with_its_reason(demo_server: str) -> None:
    with httpx.Client(base_url=demo_server, timeout=30) as browser:
        page = browser.get("/")
        assert "p.creds" in page.text, "the sign-in page carries the script that shows the reason"
        for name in ("mia", "nobody-here"):
            for attempt in range(5):
                answer = browser.post("/login", data={"username": name, "password": f"wrong {attempt}"})
                assert answer.status_code == 400 and answer.json()["detail"] == "Incorrect credentials."
            locked = browser.post("/login", data={"username": name, "password": DEMO_PASSWORD})
            assert locked.status_code == 400
            reason = locked.json()["detail"]
            assert "locked" in reason and "try again in 15 minutes" in reason
        assert browser.post("/login", data={"username": "ada", "password": DEMO_PASSWORD}).status_code == 200
