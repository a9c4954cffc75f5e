"""What the editing service returns: an edited image with how it was made (:class:`EditView`), a campaign's
images (:class:`CampaignResult`), an image's lineage (:class:`Lineage`) and reviewer-marked regions
(:class:`RegionView`); and the queries behind them, each limited to the images the actor may see.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from studio.db.edit_models import ImageEdit, ImageRegion
from studio.db.generation_models import Image
from studio.db.models import User
from studio.services.generation_save import ImageView
from studio.services.views import Actor
from studio.services.visibility import visibility_clause

MAX_ANCESTORS = 64


@dataclass(frozen=True)
class EditView:
    """An image made by an edit: the saved image (pending review, like any generated image) and how it was
    made from its parent. ``source_path`` / ``mask_path`` are the stored source and mask (server files, not
    served to browsers: read them with ``EditingService.edit_images``)."""

    image: ImageView
    kind: str
    parent_image_id: int | None
    strength: float
    mask_blur: int | None
    anchor: str | None
    scale: int | None
    group_id: str | None
    source_path: Path
    mask_path: Path | None
    created_at: datetime


@dataclass(frozen=True)
class CampaignResult:
    """One image expanded to the brand's size presets: the images made (sharing ``group_id``) and the presets
    left out, with why (smaller than the image, or its own size). ``cancelled``: stopped part way (the
    images made so far are kept)."""

    group_id: str
    parent_image_id: int
    edits: tuple[EditView, ...]
    skipped: tuple[tuple[str, str], ...]
    cancelled: bool = False


@dataclass(frozen=True)
class LineageItem:
    """An image in a lineage: the image, and the edit that made it (None for an image made from text)."""

    image: ImageView
    edit: EditView | None


@dataclass(frozen=True)
class Lineage:
    """An image, the images it was made from (``ancestors``, nearest first, up to the first one the actor may
    not see: ``hidden_ancestor`` says there is one) and the images made from it (``children``, oldest first),
    and the other images of its campaign group (``group``)."""

    image: LineageItem
    ancestors: tuple[LineageItem, ...]
    children: tuple[LineageItem, ...]
    group: tuple[LineageItem, ...]
    hidden_ancestor: bool = False


@dataclass(frozen=True)
class RegionView:
    """A region a reviewer marked on an image (``mask_path``: white = the region)."""

    id: int
    image_id: int
    marked_by: str
    comment: str
    mask_sha256: str
    mask_path: Path
    created_at: datetime


class LineageReader:
    """Reads lineage rows as views. ``image_view(image)`` makes an :class:`ImageView`; ``stored(kind, sha)``
    is the stored file of a source (``"sources"``) or mask (``"masks"``)."""

    def __init__(
        self, image_view: Callable[[Session, Image], ImageView], stored: Callable[[str, str], Path]
    ) -> None:
        self._image_view = image_view
        self._stored = stored

    def edit_view(self, session: Session, image: Image, edit: ImageEdit) -> EditView:
        return EditView(
            image=self._image_view(session, image),
            kind=edit.kind,
            parent_image_id=edit.parent_image_id,
            strength=edit.strength,
            mask_blur=edit.mask_blur,
            anchor=edit.anchor,
            scale=edit.scale,
            group_id=edit.group_id,
            source_path=self._stored("sources", edit.source_sha256),
            mask_path=self._stored("masks", edit.mask_sha256) if edit.mask_sha256 else None,
            created_at=edit.created_at,
        )

    def item(self, session: Session, image: Image) -> LineageItem:
        edit = session.get(ImageEdit, image.id)
        view = None if edit is None else self.edit_view(session, image, edit)
        return LineageItem(image=self._image_view(session, image), edit=view)

    def lineage(self, session: Session, actor: Actor, image: Image) -> Lineage:
        """``image``'s lineage as ``actor`` may see it."""
        clause = visibility_clause(session, actor)
        ancestors: list[LineageItem] = []
        hidden = False
        edit = session.get(ImageEdit, image.id)
        seen = {image.id}
        while edit is not None and edit.parent_image_id is not None and len(ancestors) < MAX_ANCESTORS:
            parent = self._visible(session, clause, edit.parent_image_id)
            if parent is None or parent.id in seen:
                hidden = parent is None
                break
            seen.add(parent.id)
            ancestors.append(self.item(session, parent))
            edit = session.get(ImageEdit, parent.id)
        children = self._images(
            session, clause, select(ImageEdit.image_id).where(ImageEdit.parent_image_id == image.id)
        )
        group: list[LineageItem] = []
        own = session.get(ImageEdit, image.id)
        if own is not None and own.group_id:
            query = select(ImageEdit.image_id).where(ImageEdit.group_id == own.group_id)
            group = [item for item in self._images(session, clause, query) if item.image.id != image.id]
        return Lineage(
            image=self.item(session, image),
            ancestors=tuple(ancestors),
            children=tuple(children),
            group=tuple(group),
            hidden_ancestor=hidden,
        )

    def group(self, session: Session, actor: Actor, group_id: str) -> tuple[EditView, ...]:
        """The images of a campaign group the actor may see, oldest first."""
        clause = visibility_clause(session, actor)
        query = select(ImageEdit.image_id).where(ImageEdit.group_id == group_id)
        return tuple(item.edit for item in self._images(session, clause, query) if item.edit is not None)

    def region_view(self, session: Session, region: ImageRegion) -> RegionView:
        user = session.get(User, region.user_id)
        return RegionView(
            id=region.id,
            image_id=region.image_id,
            marked_by=user.username if user is not None else "",
            comment=region.comment,
            mask_sha256=region.mask_sha256,
            mask_path=self._stored("masks", region.mask_sha256),
            created_at=region.created_at,
        )

    def _visible(self, session: Session, clause: object, image_id: int) -> Image | None:
        query = select(Image).where(Image.id == image_id)
        if clause is not None:
            query = query.where(clause)  # type: ignore[arg-type]
        return session.scalar(query)

    def _images(self, session: Session, clause: object, ids: object) -> list[LineageItem]:
        query = select(Image).where(Image.id.in_(ids)).order_by(Image.created_at, Image.id)  # type: ignore[arg-type]
        if clause is not None:
            query = query.where(clause)  # type: ignore[arg-type]
        return [self.item(session, image) for image in session.scalars(query)]
