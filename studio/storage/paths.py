"""Stored paths: files inside the data folder are recorded relative to it (portable across machines that
share storage); paths outside it are recorded absolute."""

from __future__ import annotations

from pathlib import Path


def stored_path(home: Path, path: Path | str) -> str:
    """How ``path`` is recorded: relative to ``home`` (POSIX form) when inside it, else absolute."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(Path(home).resolve()).as_posix()
    except ValueError:
        return str(resolved)


def home_path(home: Path, stored: str) -> Path:
    """The file a recorded path names: relative ones are under ``home``."""
    path = Path(stored)
    return path if path.is_absolute() else Path(home) / path
