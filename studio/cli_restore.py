"""``studio regenerate FILE.png`` and ``studio generate --from FILE.png``: settings from a PNG.

Both are one :class:`~studio.services.png_restore.PngRestore` call; what of the PNG did not map is printed
on stderr (``not mapped: …``) before the run. ``studio.cli`` calls these from its ``generate`` and
``regenerate`` commands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import typer

from studio.services.png_restore import PngRestore, PngSettings


def looks_like_file(value: str) -> bool:
    """Whether a ``regenerate`` argument names a file rather than an image id."""
    return not value.strip().isdigit()


def _notes(settings: PngSettings) -> None:
    for line in settings.unmapped:
        typer.echo(f"not mapped: {line}", err=True)


def regenerate_png(
    services: Any, actor: Any, path: Path, brand: str | None, progress: Callable[[int, int], None]
) -> Any:
    """Make the PNG at ``path`` again (a studio image from its stored recipe; an edit this studio does not
    have from its stored source and mask, or refused saying the source image is needed); the result."""
    restore = PngRestore.of(services)
    settings = restore.read(actor, path, brand)
    if settings.edit is None:  # an edit is made again as recorded, or refused: nothing is left unmapped
        _notes(settings)
    result, _ = restore.regenerate(actor, path, brand, progress=progress)
    return result


def generate_from_png(
    services: Any,
    actor: Any,
    path: Path,
    overrides: Mapping[str, Any],
    brand: str | None,
    progress: Callable[[int, int], None],
) -> Any:
    """Generate with the PNG's settings and ``overrides``; the result."""
    restore = PngRestore.of(services)
    _notes(restore.read(actor, path, brand))
    result, _ = restore.generate(actor, path, overrides, brand, progress=progress)
    return result
