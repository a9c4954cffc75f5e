"""Fixtures for the editing tests: services over a real SQLite file (migrated by Alembic) sharing one engine
on the embedded model, brand ``toy`` (embedded:toyworld; presets square 64x64, story 64x112, banner 112x64;
banned term "competitor"), users mia and olga (marketers, members), rex (reviewer member),
and a text-to-image picture by mia to edit (``made``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from engine_fixtures import fast_cpu  # noqa: F401

from studio.services.brand_files import BrandSpec, SizePreset
from studio.services.editing import EditingService
from studio.services.generation import EngineProvider, GenerationService
from studio.services.views import SYSTEM, Actor

PASSWORD = "correct horse"
MIA, OLGA, REX = Actor.user("mia"), Actor.user("olga"), Actor.user("rex")
PROMPT = "a red circle on a white background, center"


@pytest.fixture(scope="module")
def toy_engine(fast_cpu: None) -> Any:  # noqa: F811
    from studio.engine.generate import Engine

    return Engine("embedded:toyworld", device="cpu")


def with_engine(services: Any, engine: Any, settings: Any = None) -> Any:
    """``services`` whose generation and editing share ``engine`` (and ``settings``, when given)."""
    settings = settings or services.settings
    provider = EngineProvider(settings, factory=lambda: engine)
    editing = EditingService(services.sessions, settings, provider)
    return dataclasses.replace(
        services,
        settings=settings,
        engines=provider,
        editing=editing,
        generation=GenerationService(services.sessions, settings, provider, edits=editing),
    )


@pytest.fixture
def studio(services: Any, toy_engine: Any) -> Any:
    built = with_engine(services, toy_engine)
    spec = BrandSpec(
        slug="toy",
        name="Toy",
        palette=("#ff0000", "#ffffff"),
        palette_threshold=0.4,
        style_template="{prompt}",
        banned_terms=("competitor",),
        size_presets=(
            SizePreset("square", "feed", 64, 64),
            SizePreset("story", "stories", 64, 112),
            SizePreset("banner", "web", 112, 64),
        ),
        default_size="square",
        default_cfg=5.0,
        default_steps=6,
        default_sampler="Euler",
        base_model="embedded:toyworld",
    )
    built.brands.create_brand(SYSTEM, spec)
    built.users.add_user(SYSTEM, "mia", ["marketer"], PASSWORD)
    built.users.add_user(SYSTEM, "olga", ["marketer"], PASSWORD)
    built.users.add_user(SYSTEM, "rex", ["reviewer"], PASSWORD)
    built.brands.grant(SYSTEM, "toy", "mia")
    built.brands.grant(SYSTEM, "toy", "olga")
    built.brands.grant(SYSTEM, "toy", "rex")
    return built


@pytest.fixture
def made(studio: Any) -> Any:
    """mia's text-to-image picture of the toy brand (pending review)."""
    from studio.services.generation import GenerateInput

    return studio.generation.generate(MIA, GenerateInput(brand="toy", prompt=PROMPT, seed=3)).images[0]
