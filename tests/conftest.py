"""Shared fixtures: a temporary STUDIO_HOME migrated with the real migrations, and services built the same
way the app builds them (``build_services``). No database mocks.

The database-facing tests (``BOTH_DATABASES``, or marked ``both_databases``) run twice: on a SQLite file and
on a fresh database of a private PostgreSQL server (``support/postgres.py``), through ``database_url``. The
PostgreSQL runs carry the ``postgres`` marker (``-m "not postgres"`` leaves them out). Without the server
binaries or the driver they are skipped with the reason, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import safetensors_bytes
from support.postgres import PostgresServer, PostgresUnavailable

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.pop("STUDIO_ADMIN_PASSWORD", None)

# Test modules (paths under tests/) whose tests run on SQLite and on PostgreSQL.
BOTH_DATABASES = (
    "integration/test_migrations.py",
    "integration/test_users_service.py",
    "integration/test_lockout.py",
    "integration/test_brands_service.py",
    "integration/generation/test_generation_service.py",
    "integration/review/test_review_service.py",
    "integration/review/test_gallery_export.py",
    "integration/review/test_image_visibility.py",
    "integration/test_training_services.py",
    "integration/test_queue_claims.py",
    "integration/test_training_worker.py",
    "integration/security/test_logins_and_sessions.py",
)
TESTS = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: the PostgreSQL run of a database-facing test")
    config.addinivalue_line("markers", "both_databases: run this test on SQLite and on PostgreSQL")
    config.addinivalue_line("markers", "sqlite_only: a test of SQLite specifics, not run on PostgreSQL")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the database-facing tests once per database, through the ``database_url`` fixture (or
    ``module_database_url``, for a module-scoped studio)."""
    names = [n for n in ("database_url", "module_database_url") if n in metafunc.fixturenames]
    if not names:
        return
    path = Path(str(metafunc.definition.path)).resolve()
    listed = path.is_relative_to(TESTS) and path.relative_to(TESTS).as_posix() in BOTH_DATABASES
    if not (listed or metafunc.definition.get_closest_marker("both_databases")):
        return
    backends = ["sqlite"]
    if not metafunc.definition.get_closest_marker("sqlite_only"):
        backends.append(pytest.param("postgres", marks=pytest.mark.postgres))
    scope = "function" if names[0] == "database_url" else "module"
    metafunc.parametrize(names[0], backends, indirect=True, scope=scope)


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A private PostgreSQL server for the whole run, with a template database migrated to head."""
    from studio.config import Settings
    from studio.db.migrate import upgrade

    try:
        server = PostgresServer.start()
    except PostgresUnavailable as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI needs PostgreSQL for the database tests: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL tests skipped: {exc}")
    try:
        home = tmp_path_factory.mktemp("pg-template-home")
        server.migrate_head_template(
            lambda url: upgrade(Settings.from_env({"STUDIO_HOME": str(home), "STUDIO_DATABASE_URL": url}))
        )
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, studio_home: Path) -> Iterator[str]:
    """The test's database: a SQLite file in ``studio_home`` (the default), or on the PostgreSQL run a
    fresh database (already migrated to head when the test asks for ``services``)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite:///{studio_home / 'studio.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.fresh_database(migrated="services" in request.fixturenames)
    try:
        yield url
    finally:
        server.drop_database(url)


@pytest.fixture(scope="module")
def module_database_url(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """A module-scoped studio's database: None for SQLite (the studio's own file), or on the PostgreSQL
    run a fresh, empty database."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield None
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    url = server.fresh_database()
    try:
        yield url
    finally:
        server.drop_database(url)


@pytest.fixture
def studio_home(tmp_path: Path) -> Path:
    """An empty data folder."""
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def settings(studio_home: Path, database_url: str):  # noqa: ANN201
    from studio.config import Settings

    return Settings.from_env({"STUDIO_HOME": str(studio_home), "STUDIO_DATABASE_URL": database_url})


@pytest.fixture
def services(settings) -> Iterator[Any]:  # noqa: ANN001
    """All services over a fresh SQLite file migrated by Alembic."""
    from argon2 import PasswordHasher, profiles

    from studio.services.container import build_services

    built = build_services(settings, password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def cli_env(studio_home: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment for running the real ``studio`` CLI against ``studio_home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
    env.update({"STUDIO_HOME": str(studio_home), "HF_HUB_OFFLINE": "1"})
    if "database_url" in request.fixturenames:
        env["STUDIO_DATABASE_URL"] = request.getfixturevalue("database_url")
    return env


@pytest.fixture
def make_lora(tmp_path: Path) -> Callable[..., Path]:
    """Write a valid LoRA ``.safetensors`` file and return its path."""

    def make(name: str = "lora.safetensors", folder: Path | None = None, **kwargs: Any) -> Path:
        path = (folder or tmp_path) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(safetensors_bytes(**kwargs))
        return path

    return make
