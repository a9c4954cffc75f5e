"""The lineage of exported images (``studio export --with-lineage``, issue 19): for each exported image,
how it was made (``made_by``: the edit, or None for text-to-image) and its ancestors, nearest first.

What a brand team gets, and why:

* every ancestor the exporter may see is listed with its id, review status, the edit that made it and its
  full recipe, so the trail from an approved campaign image back to its hero (and how each step was made)
  travels with the files and can be audited or regenerated;
* an ancestor's PNG is included (``lineage/<id>.png``, signed with its approval like every exported image)
  only when it is approved: an export is what leaves the studio, and pending or rejected pictures never do;
  the others are listed without a file;
* the walk stops at the first ancestor the exporter may not see (``lineage_complete`` is then false), as the
  gallery's lineage does; an edit of an uploaded file (or of a deleted image) ends with ``parent_image_id``
  None and the stored source's ``source_sha256``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from studio.db.edit_models import ImageEdit
from studio.db.generation_models import Image
from studio.services.views import Actor
from studio.services.visibility import visibility_clause

MAX_ANCESTORS = 64


@dataclass(frozen=True)
class ExportLineage:
    """The lineage of the exported images: ``made_by`` and ``ancestors`` (ids nearest first) per exported
    id, whether each walk reached its root (``complete``), and every ancestor's listing (``entries``)."""

    made_by: dict[int, dict[str, Any] | None]
    ancestors: dict[int, tuple[int, ...]]
    complete: dict[int, bool]
    entries: dict[int, dict[str, Any]]

    @property
    def approved_ancestors(self) -> tuple[int, ...]:
        """Ancestor ids whose PNGs go into the export (the approved ones), oldest first."""
        return tuple(sorted(i for i, entry in self.entries.items() if entry["review_status"] == "approved"))


def edit_fields(edit: ImageEdit | None) -> dict[str, Any] | None:
    """How an image was made from its parent, as exported (None: made from text)."""
    if edit is None:
        return None
    return {
        "kind": edit.kind,
        "parent_image_id": edit.parent_image_id,
        "strength": edit.strength,
        "mask_blur": edit.mask_blur,
        "anchor": edit.anchor,
        "scale": edit.scale,
        "group_id": edit.group_id,
        "source_sha256": edit.source_sha256,
        "mask_sha256": edit.mask_sha256,
    }


def read_lineage(session: Session, actor: Actor, image_ids: Iterable[int]) -> ExportLineage:
    """The lineage of ``image_ids`` as ``actor`` may see it."""
    clause = visibility_clause(session, actor)
    made_by: dict[int, dict[str, Any] | None] = {}
    ancestors: dict[int, tuple[int, ...]] = {}
    complete: dict[int, bool] = {}
    entries: dict[int, dict[str, Any]] = {}
    for image_id in image_ids:
        edit = session.get(ImageEdit, image_id)
        made_by[image_id] = edit_fields(edit)
        chain: list[int] = []
        seen = {image_id}
        reached_root = True
        while edit is not None and edit.parent_image_id is not None:
            parent = _visible(session, clause, edit.parent_image_id)
            if parent is None or parent.id in seen or len(chain) >= MAX_ANCESTORS:
                reached_root = False
                break
            seen.add(parent.id)
            chain.append(parent.id)
            edit = session.get(ImageEdit, parent.id)
            if parent.id not in entries:
                entries[parent.id] = _entry(parent, edit)
        ancestors[image_id] = tuple(chain)
        complete[image_id] = reached_root
    return ExportLineage(made_by, ancestors, complete, entries)


def _entry(image: Image, edit: ImageEdit | None) -> dict[str, Any]:
    return {
        "id": image.id,
        "review_status": image.review_status,
        "made_by": edit_fields(edit),
        "file": "",
        "created_at": image.created_at.isoformat(),
        "recipe": {**image.generation.recipe, "seed": image.seed},
    }


def _visible(session: Session, clause: object, image_id: int) -> Image | None:
    query = select(Image).where(Image.id == image_id)
    if clause is not None:
        query = query.where(clause)  # type: ignore[arg-type]
    return session.scalar(query)


def lineage_columns(
    lineage: ExportLineage, image_id: int, files: dict[int, str], approvals: dict[int, dict[str, Any]]
) -> dict[str, Any]:
    """The ``made_by``, ``lineage`` and ``lineage_complete`` fields of an exported image's record; each
    ancestor's ``file`` is its path in the zip (``files``; "" when not included) and an approved one carries
    its reviewer and decision time (``approvals``)."""
    listed = []
    for ancestor in lineage.ancestors[image_id]:
        entry = {**lineage.entries[ancestor], "file": files.get(ancestor, "")}
        listed.append({**entry, **approvals.get(ancestor, {})})
    return {
        "made_by": lineage.made_by[image_id],
        "lineage": listed,
        "lineage_complete": lineage.complete[image_id],
    }
