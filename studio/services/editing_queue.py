"""Edits through the job queue (``STUDIO_GENERATION=queue``, issue 20): the web app plans and checks an edit
as inline, stores its source and mask content-addressed (``STUDIO_HOME/edits``), and queues it as a
``generate`` job whose row also holds the edit (:func:`edit_config`: the kind, strength, … and the source and
mask by sha256, never the pictures). A worker with the shared data folder (:class:`QueuedEdits`, given to
:class:`~studio.services.generation_worker.GenerationJobRunner`) loads them back, runs the edit on its engine
and saves the image with its lineage row in the job's transaction. Same seed, same pixels as inline.

Also here: :func:`lineage_rows`, the ``image_edits`` rows (and audit) of a saved edit, for both paths.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from studio.config import Settings
from studio.db.edit_models import ImageEdit
from studio.db.generation_models import Generation, Image
from studio.engine.edit_request import EditRequest
from studio.services import audit
from studio.services.editing_files import EditFiles
from studio.services.views import Actor

if TYPE_CHECKING:  # pragma: no cover
    from studio.engine.generate import Engine, GeneratedImage
    from studio.engine.recipe import EditEntry
    from studio.engine.request import GenerationRequest

RowsCallback = Callable[[Session, Generation], None]
#: the EditRequest fields a queued edit's row holds (the pictures are named by source_sha256 / mask_sha256)
_FIELDS = (
    "kind", "strength", "mask_blur", "anchor", "scale", "source_sha256", "mask_sha256", "parent_image_id",
    "tile_size", "tile_overlap", "colour_sigma",
)  # fmt: skip


def lineage_rows(actor: Actor, entry: EditEntry, group_id: str | None) -> RowsCallback:
    """``within(session, generation)`` for the saver: one ``image_edits`` row (and an audit line) for each
    image of the saved generation, made by the edit ``entry``."""

    def add(session: Session, generation: Generation) -> None:
        parent = entry.parent_image_id
        if parent is not None and session.get(Image, parent) is None:
            parent = None  # deleted since (a regenerate of an old edit)
        for row in generation.images:
            session.add(
                ImageEdit(
                    image_id=row.id,
                    parent_image_id=parent,
                    kind=entry.kind,
                    strength=entry.strength,
                    source_sha256=entry.source_sha256,
                    mask_sha256=entry.mask_sha256,
                    mask_blur=entry.mask_blur,
                    anchor=entry.anchor,
                    scale=entry.scale,
                    group_id=group_id,
                )
            )
            audit.record(session, actor, "image.edit", f"image:{row.id}", kind=entry.kind, parent=parent)

    return add


def edit_config(request: EditRequest, group_id: str | None) -> dict[str, Any]:
    """What a queued edit's job row holds besides the plan and the engine's request (JSON)."""
    return {**{name: getattr(request, name) for name in _FIELDS}, "group_id": group_id}


class QueuedEdits:
    """The worker's side of queued edits (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self._files = EditFiles(settings.home)

    def run(
        self,
        config: dict[str, Any],
        generation: GenerationRequest,
        engine: Engine,
        progress: Callable[[int, int], None] | None,
        cancel: threading.Event | None,
    ) -> list[GeneratedImage]:
        """Run the edit of a job row on ``engine``. A source or mask missing from the shared store is a
        ValidationError naming it; a cancel raises the engine's GenerationCancelled (with the images
        finished), as a generation's does."""
        from studio.engine.edit import edit_images

        fields = {name: config.get(name) for name in _FIELDS}
        source = self._files.load("sources", fields["source_sha256"], "source")
        mask = self._files.load("masks", fields["mask_sha256"], "mask") if fields["mask_sha256"] else None
        request = EditRequest(source=source, mask=mask, generation=generation, **fields)
        return edit_images(engine, request, progress, cancel)

    @staticmethod
    def rows(actor: Actor, config: dict[str, Any], images: list[GeneratedImage]) -> RowsCallback:
        """The lineage rows to save with the edit's ``images`` (:func:`lineage_rows`)."""
        entry = images[0].recipe.edit
        assert entry is not None
        return lineage_rows(actor, entry, config.get("group_id"))
