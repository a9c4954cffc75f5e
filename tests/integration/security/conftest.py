"""Fixtures for the login and session tests: the studio UI, built as ``app.py`` builds it, on 127.0.0.1 over
a fresh database (SQLite, or PostgreSQL on that run: the ``settings`` fixture), with users
(``login_support``) whose passwords are hashed at a real, if lighter than default, argon2 cost: a password
check takes tens of milliseconds as in production, so races and timings are real.

Requests can say which client address they come from with ``X-Forwarded-For``: uvicorn trusts it from
127.0.0.1 (``FORWARDED_ALLOW_IPS``), as it would from a reverse proxy on the same machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import serve_ui
from login_support import PASSWORDS, ROLES, LoginServer


@pytest.fixture
def login_server(
    studio_home: Path, settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch  # noqa: ANN001
) -> Iterator[LoginServer]:
    from argon2 import PasswordHasher

    from studio.services.container import build_services
    from studio.services.views import SYSTEM

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    hasher = PasswordHasher(time_cost=2, memory_cost=32 * 1024, parallelism=1)
    services = build_services(settings, password_hasher=hasher)
    try:
        for name, password in PASSWORDS.items():
            services.users.add_user(SYSTEM, name, ROLES[name], password)
        with serve_ui(services) as url:
            yield LoginServer(url=url.rstrip("/"), services=services, db=studio_home / "studio.db")
    finally:
        services.close()
