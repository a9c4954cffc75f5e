"""Shared fixtures: a temporary STUDIO_HOME migrated with the real migrations, and services built the same
way the app builds them (``build_services``). No database mocks."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import safetensors_bytes

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.pop("STUDIO_ADMIN_PASSWORD", None)



@pytest.fixture
def studio_home(tmp_path: Path) -> Path:
    """An empty data folder."""
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.fixture
def settings(studio_home: Path):  # noqa: ANN201
    from studio.config import Settings

    return Settings.from_env({"STUDIO_HOME": str(studio_home)})


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
def cli_env(studio_home: Path) -> dict[str, str]:
    """Environment for running the real ``studio`` CLI against ``studio_home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUDIO_")}
    env.update({"STUDIO_HOME": str(studio_home), "HF_HUB_OFFLINE": "1"})
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
