"""Images side by side: every recipe field (plus brand, author, review status and palette score) per image,
as text a person reads, and whether it differs.

Values are compared as they are shown, so a row never says "differs" while showing the same text: numbers are
written the same way whatever their type (``5`` and ``5.0`` → ``5``; floats to 4 decimals, trailing zeros
dropped, so a weight that went through float32 is still ``0.8``; tiny ones in 3 significant digits), and the
palette score with the 2 decimals the Review tab shows.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from studio.services.gallery_views import ImageDetail

MISSING = "—"  # a field one image's recipe does not have


@dataclass(frozen=True)
class DiffRow:
    """One field across the compared images, as shown; ``differs`` when not all values are equal."""

    key: str
    values: tuple[str, ...]
    differs: bool


@dataclass(frozen=True)
class Comparison:
    """Two or more images side by side with every recipe field, differing ones flagged."""

    images: tuple[ImageDetail, ...]
    rows: tuple[DiffRow, ...]

    @property
    def differences(self) -> tuple[DiffRow, ...]:
        """The rows whose values are not all the same."""
        return tuple(row for row in self.rows if row.differs)

    @property
    def shared(self) -> tuple[DiffRow, ...]:
        """The rows every image has the same value in."""
        return tuple(row for row in self.rows if not row.differs)


def shown_number(value: float) -> str:
    """A number as a person reads it: integers plainly, floats to 4 decimals without trailing zeros (tiny ones
    in 3 significant digits)."""
    if not math.isfinite(value):
        return str(value)
    if float(value).is_integer():
        return str(int(value))
    if abs(value) < 1e-3:
        return f"{value:.3g}"
    return f"{value:.4f}".rstrip("0").rstrip(".")


def shown(value: Any) -> str:
    """A recipe leaf as text (numbers by :func:`shown_number`; ``None`` as empty)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return shown_number(value)
    return str(value)


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """Nested dicts/lists → ``{"loras[0].weight": "0.8", ...}`` with leaves as :func:`shown` writes them."""
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for key in sorted(value):
            out.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(value, list | tuple):
        if not value:
            return {prefix: "[]"}
        out = {}
        for index, entry in enumerate(value):
            out.update(flatten(entry, f"{prefix}[{index}]"))
        return out
    return {prefix: shown(value)}


def diff_rows(details: Iterable[ImageDetail]) -> tuple[DiffRow, ...]:
    """Brand, author, status, palette score, then every recipe field, per image; differing ones flagged."""
    flats = []
    for detail in details:
        score = detail.item.palette_score
        flat = {
            "brand": detail.item.brand_slug,
            "author": detail.item.author,
            "review_status": detail.item.review_status,
            "palette_score": "not scored" if score is None else f"{score:.2f}",
        }
        flat.update(flatten(detail.recipe))
        flats.append(flat)
    keys = list(dict.fromkeys(key for flat in flats for key in flat))
    rows = []
    for key in keys:
        values = tuple(flat.get(key, MISSING) for flat in flats)
        rows.append(DiffRow(key=key, values=values, differs=len(set(values)) > 1))
    return tuple(rows)
