"""What the generation benchmarks share: a studio in a scratch folder with one brand (``bench``) and its
marketers, and timing two things in interleaved pairs.

Pairs alternate which side runs first, so load drift and warm caches fall on both sides alike; report the
median of the per-pair ratios.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from argon2 import PasswordHasher, profiles

from studio.config import Settings
from studio.services.brand_files import BrandSpec, SizePreset
from studio.services.container import Services, build_services
from studio.services.views import SYSTEM

PASSWORD = "bench-password"


def bench_studio(
    settings: Settings,
    *,
    model_ref: str | None,
    width: int,
    height: int,
    users: Sequence[str] = ("mia",),
    steps: int | None = None,
    cfg: float | None = None,
) -> Services:
    """Services over ``settings`` (cheap password hashing) with brand ``bench`` (one size preset, Euler,
    ``model_ref`` pinned unless None) and ``users`` as its marketers."""
    services = build_services(settings, password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    defaults: dict[str, Any] = {}
    if steps is not None:
        defaults["default_steps"] = steps
    if cfg is not None:
        defaults["default_cfg"] = cfg
    services.brands.create_brand(
        SYSTEM,
        BrandSpec(
            slug="bench",
            name="Bench",
            palette=("black", "red"),
            style_template="{prompt}",
            size_presets=(SizePreset("square", "feed", width, height),),
            default_size="square",
            default_sampler="Euler",
            base_model=model_ref,
            **defaults,
        ),
    )
    for user in users:
        services.users.add_user(SYSTEM, user, ["marketer"], PASSWORD)
        services.brands.grant(SYSTEM, "bench", user)
    return services


def interleaved(
    first: Callable[[], Any], second: Callable[[], Any], repeat: int
) -> tuple[list[float], list[float]]:
    """Seconds of ``repeat`` runs of each, in pairs whose order alternates (``first`` first in even pairs)."""
    times: tuple[list[float], list[float]] = ([], [])
    for index in range(repeat):
        for side in (0, 1) if index % 2 == 0 else (1, 0):
            start = time.perf_counter()
            (first, second)[side]()
            times[side].append(time.perf_counter() - start)
    return times
