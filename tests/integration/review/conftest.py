"""Fixtures for review/gallery/export tests: a tiny random SD folder (with ``controlnet/``), one engine for
the session, and services over a fresh SQLite file with brand ``acme`` (a LoRA, a layout template) and users:
mia, max (marketers, members), rex and rita (reviewers, members; rita also a marketer), olga (reviewer,
not a member). Images are made by the real generation service (3 steps, 32×32)."""

from __future__ import annotations

import dataclasses
import io
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_fixtures import controlnet_dir, fast_cpu, lora_files, sd1_dir  # noqa: F401
from live_server import server  # noqa: F401 (the UI over ``studio``, on 127.0.0.1)
from PIL import Image, ImageDraw
from review_support import MIA, PASSWORD, generate_images

from studio.services.brand_files import BrandSpec, SizePreset
from studio.services.generation import EngineProvider, GenerationService
from studio.services.templates import TemplateService
from studio.services.views import SYSTEM, Actor


def _square_png(size: int = 64) -> bytes:
    image = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(image).rectangle((size // 4, size // 4, 3 * size // 4, 3 * size // 4), fill="red")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def review_model_dir(tmp_path_factory: pytest.TempPathFactory, sd1_dir: Path, controlnet_dir: Path) -> Path:  # noqa: F811
    folder = tmp_path_factory.mktemp("acme-model") / "model"
    shutil.copytree(sd1_dir, folder)
    shutil.copytree(controlnet_dir, folder / "controlnet")
    return folder


@pytest.fixture(scope="session")
def review_engine(review_model_dir: Path) -> Any:
    """One engine for every review test module (the images' pixels do not matter here)."""
    from studio.engine.generate import Engine

    return Engine(str(review_model_dir), device="cpu")


def acme_studio(services: Any, engine: Any, model_dir: Path, loras: dict[str, Path]) -> Any:
    """``services`` sharing ``engine``, with brand ``acme`` (LoRA ``shine``, template ``frame``) and the
    users above."""
    provider = EngineProvider(services.settings, factory=lambda: engine)
    built = dataclasses.replace(
        services,
        engines=provider,
        generation=GenerationService(services.sessions, services.settings, provider),
        templates=TemplateService(services.sessions, services.settings, provider),
    )
    spec = BrandSpec(
        slug="acme",
        name="Acme",
        palette=("#ff0000", "#ffffff"),
        palette_threshold=0.4,
        style_template="{prompt}, acme style",
        size_presets=(SizePreset("square", "feed", 32, 32),),
        default_size="square",
        default_cfg=5.0,
        default_steps=3,
        default_sampler="Euler",
        base_model=str(model_dir),
    )
    built.brands.create_brand(SYSTEM, spec)
    built.brands.upload_lora(SYSTEM, "acme", loras["a"], name="shine", default_weight=0.8)
    built.templates.create(SYSTEM, "acme", "frame", _square_png(), "canny")
    for name, roles in (
        ("mia", ["marketer"]),
        ("max", ["marketer"]),
        ("rex", ["reviewer"]),
        ("rita", ["reviewer", "marketer"]),
        ("olga", ["reviewer"]),
    ):
        built.users.add_user(SYSTEM, name, roles, PASSWORD)
        if name != "olga":
            built.brands.grant(SYSTEM, "acme", name)
    return built


@pytest.fixture
def studio(services, review_engine: Any, review_model_dir: Path, lora_files: dict[str, Path]) -> Any:  # noqa: ANN001, F811
    """A fresh studio per test (see :func:`acme_studio`)."""
    return acme_studio(services, review_engine, review_model_dir, lora_files)


@pytest.fixture(scope="module")
def module_studio(
    tmp_path_factory: pytest.TempPathFactory,
    module_database_url: str | None,
    review_engine: Any,
    review_model_dir: Path,
    lora_files: dict[str, Path],  # noqa: F811
) -> Iterator[Any]:
    """One studio for a whole module (for tests that only read what a module fixture made)."""
    from argon2 import PasswordHasher, profiles

    from studio.config import Settings
    from studio.services.container import build_services

    home = tmp_path_factory.mktemp("review-home")
    env = {"STUDIO_HOME": str(home)}
    if module_database_url:  # the PostgreSQL run (tests/conftest.py)
        env["STUDIO_DATABASE_URL"] = module_database_url
    services = build_services(
        Settings.from_env(env),
        password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST),
    )
    try:
        yield acme_studio(services, review_engine, review_model_dir, lora_files)
    finally:
        services.close()


@pytest.fixture
def make_images(studio: Any) -> Callable[..., list[int]]:
    """Generate images through the real service; returns their ids."""

    def make(actor: Actor = MIA, prompt: str = "a red circle", count: int = 1, **kwargs: Any) -> list[int]:
        return generate_images(studio, actor, prompt, count, **kwargs)

    return make
