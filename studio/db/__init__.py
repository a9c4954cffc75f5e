"""Database layer: typed models, engine/session factory, repositories and migrations."""

from __future__ import annotations

import importlib
import pkgutil


def load_all_models() -> None:
    """Import every ``studio.db.*models`` module so ``Base.metadata`` holds every table (for Alembic)."""
    for info in pkgutil.iter_modules(__path__):
        if info.name.endswith("models"):
            importlib.import_module(f"{__name__}.{info.name}")
