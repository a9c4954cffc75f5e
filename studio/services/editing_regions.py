"""Regions reviewers mark on an image (a stored mask and a note), which the marketer's "Fix region" inpaints.

Marking needs the reviewer role (or admin) and an image the actor may see; reading needs only the image.
The masks are stored content-addressed with the edits' masks (``STUDIO_HOME/edits/masks``).
"""

from __future__ import annotations

from typing import Any

from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from studio.db.edit_models import ImageRegion
from studio.engine.edit_masks import load_mask
from studio.errors import NotFoundError, ValidationError
from studio.services import audit
from studio.services.editing_files import EditFiles
from studio.services.editing_views import LineageReader, RegionView
from studio.services.generation_plan import author_id
from studio.services.generation_save import png_bytes
from studio.services.permissions import require_role
from studio.services.views import Actor
from studio.services.visibility import visible_image

MAX_COMMENT = 2000


class RegionMarks:
    """Marks and reads regions (see the module docstring)."""

    def __init__(self, sessions: sessionmaker[Session], files: EditFiles, reader: LineageReader) -> None:
        self._sessions = sessions
        self._files = files
        self._reader = reader

    def mark(self, actor: Actor, image_id: int, mask: Any, comment: str = "") -> RegionView:
        """Store ``mask`` (the image's size; white or painted = the region) as a region of the image."""
        if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
            raise ValidationError("comment", f"must be text of at most {MAX_COMMENT} characters")
        with self._sessions() as session:
            user = require_role(session, actor, "reviewer")
            image = visible_image(session, actor, image_id)
            region_mask = load_mask(mask, (image.width, image.height))
        sha256 = self._files.put("masks", png_bytes(region_mask))
        with self._sessions.begin() as session:
            region = ImageRegion(
                image_id=image.id,
                user_id=author_id(session, user),
                mask_sha256=sha256,
                comment=comment,
            )
            session.add(region)
            session.flush()
            audit.record(session, actor, "image.mark_region", f"image:{image.id}", region=region.id)
            return self._reader.region_view(session, region)

    def of_image(self, actor: Actor, image_id: int) -> tuple[RegionView, ...]:
        """The regions marked on a visible image, newest first."""
        with self._sessions() as session:
            image = visible_image(session, actor, image_id)
            rows = session.scalars(
                select(ImageRegion)
                .where(ImageRegion.image_id == image.id)
                .order_by(ImageRegion.created_at.desc(), ImageRegion.id.desc())
            )
            return tuple(self._reader.region_view(session, row) for row in rows)

    def mask(self, actor: Actor, region_id: int) -> PILImage.Image:
        """A region's mask (L, white = the region)."""
        with self._sessions() as session:
            region = self.row(session, actor, region_id)
            return self._files.load("masks", region.mask_sha256, "region_id").convert("L")

    @staticmethod
    def row(session: Session, actor: Actor, region_id: Any) -> ImageRegion:
        """The region if it is on an image the actor may see; otherwise NotFoundError."""
        region = session.get(ImageRegion, region_id) if isinstance(region_id, int) else None
        if region is None:
            raise NotFoundError(f"region {region_id} not found")
        visible_image(session, actor, region.image_id)  # the same NotFoundError for images not visible
        return region
