"""Fixtures for generation tests: a tiny random SD folder with a ``controlnet/`` subfolder (as the embedded
model has), one engine per module, and services with brand ``acme`` (a LoRA and a layout template) and users
mia (marketer member), olga (marketer, not a member) and rex (reviewer member).

Every test in this folder sees them (and the engine fixtures from ``tests/engine_fixtures.py``, and
``server``: the UI over ``studio`` on 127.0.0.1, from ``tests/live_server.py``).
"""

from __future__ import annotations

import dataclasses
import io
import shutil
from pathlib import Path
from typing import Any

import pytest
from engine_fixtures import controlnet_dir, fast_cpu, lora_files, sd1_dir  # noqa: F401
from live_server import server  # noqa: F401 (the UI over ``studio``, on 127.0.0.1)
from PIL import Image, ImageDraw

from studio.services.brand_files import BrandSpec, SizePreset
from studio.services.brands import BrandService
from studio.services.generation import EngineProvider, GenerationService
from studio.services.templates import TemplateService
from studio.services.views import SYSTEM

PASSWORD = "correct horse"


def square_png(size: int = 64) -> bytes:
    """A red square on white, as PNG bytes (a layout template source)."""
    image = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(image).rectangle((size // 4, size // 4, 3 * size // 4, 3 * size // 4), fill="red")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def template_png() -> bytes:
    """PNG bytes of a layout template source (a red square on white)."""
    return square_png()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, sd1_dir: Path, controlnet_dir: Path) -> Path:  # noqa: F811
    folder = tmp_path_factory.mktemp("acme-model") / "model"
    shutil.copytree(sd1_dir, folder)
    shutil.copytree(controlnet_dir, folder / "controlnet")
    return folder


@pytest.fixture(scope="module")
def engine(model_dir: Path) -> Any:
    from studio.engine.generate import Engine

    return Engine(str(model_dir), device="cpu")


@pytest.fixture
def studio(services, engine: Any, model_dir: Path, lora_files: dict[str, Path]) -> Any:  # noqa: ANN001, F811
    """Services sharing one engine; brand ``acme`` with a LoRA and a template; mia (member), olga
    (marketer, not a member), rex (reviewer member)."""
    provider = EngineProvider(services.settings, factory=lambda: engine)
    built = dataclasses.replace(
        services,
        engines=provider,
        brands=BrandService(services.sessions, services.settings, provider),
        generation=GenerationService(services.sessions, services.settings, provider),
        templates=TemplateService(services.sessions, services.settings, provider),
    )
    spec = BrandSpec(
        slug="acme",
        name="Acme",
        palette=("#ff0000", "#ffffff"),
        palette_threshold=0.4,
        style_template="{prompt}, acme style",
        negative_prompt="blurry",
        banned_terms=("competitor",),
        size_presets=(SizePreset("square", "feed", 32, 32), SizePreset("wide", "web", 48, 32)),
        default_size="square",
        default_cfg=5.0,
        default_steps=3,
        default_sampler="Euler",
        base_model=str(model_dir),
    )
    built.brands.create_brand(SYSTEM, spec)
    built.brands.upload_lora(
        SYSTEM, "acme", lora_files["a"], name="shine", trigger_words=["shinystyle"], default_weight=0.8
    )
    built.templates.create(SYSTEM, "acme", "frame", square_png(), "canny", guidance_end=0.9)
    built.users.add_user(SYSTEM, "mia", ["marketer"], PASSWORD)
    built.users.add_user(SYSTEM, "olga", ["marketer"], PASSWORD)
    built.users.add_user(SYSTEM, "rex", ["reviewer"], PASSWORD)
    built.brands.grant(SYSTEM, "acme", "mia")
    built.brands.grant(SYSTEM, "acme", "rex")
    return built
