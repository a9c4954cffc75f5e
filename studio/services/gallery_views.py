"""What the gallery and the review queue hand to their callers: frozen views of images, pages, details and
review transitions (no session, no ORM rows)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ReviewEntry:
    """One transition of an image's review status."""

    id: int
    image_id: int
    reviewer: str
    decision: str
    from_status: str
    to_status: str
    comment: str
    at: datetime


@dataclass(frozen=True)
class GalleryItem:
    """An image in a listing or in the review queue (``path`` is absolute)."""

    id: int
    brand_slug: str
    author: str
    prompt: str
    path: Path
    width: int
    height: int
    seed: int
    review_status: str
    palette_score: float | None
    palette_flag: bool
    palette_misses: tuple[dict[str, Any], ...]
    created_at: datetime

    @property
    def missed_colours(self) -> tuple[str, ...]:
        """The off-palette dominant colours (hex), largest first."""
        return tuple(str(m.get("colour", "")) for m in self.palette_misses)


@dataclass(frozen=True)
class GalleryPage:
    """One page of a listing; ``page`` counts from 1."""

    items: tuple[GalleryItem, ...]
    page: int
    page_size: int
    has_next: bool

    @property
    def has_previous(self) -> bool:
        return self.page > 1


@dataclass(frozen=True)
class ImageDetail:
    """An image with everything about it: the generation's prompts and full recipe, LoRAs, templates, the
    review history (oldest first) and its brand's palette (hex). Its item's misses are merged (near-identical
    colours as one, :func:`studio.palette.merge_missed`), those stored by older scores too."""

    item: GalleryItem
    generation_id: int
    negative_prompt: str
    final_prompt: str
    final_negative_prompt: str
    recipe: dict[str, Any]
    loras: tuple[dict[str, Any], ...]
    templates: tuple[dict[str, Any], ...]
    history: tuple[ReviewEntry, ...]
    palette: tuple[str, ...] = ()

    @property
    def id(self) -> int:
        return self.item.id

    def recipe_json(self) -> str:
        return json.dumps(self.recipe, indent=2, sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class FilterOptions:
    """Choices for the gallery's filters in the brands the actor may read."""

    brands: tuple[str, ...]
    authors: tuple[str, ...]
    lora_versions: tuple[tuple[str, int], ...]  # (label, lora version id)
    templates: tuple[tuple[str, int], ...]  # (label, template id)
