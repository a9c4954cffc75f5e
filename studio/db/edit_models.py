"""Edits and their lineage (issue 19): how an image was made from another, and regions reviewers mark.

An edited image is an ordinary :class:`~studio.db.generation_models.Image` (with its generation and recipe);
its :class:`ImageEdit` row names the parent image, the edit kind, the denoising strength, the stored source
and mask (content-addressed files, see ``EditingService``), the mask blur, the anchor and the upscale factor.
Images expanded together to a brand's size presets share a ``group_id``. An :class:`ImageRegion` is a region
a reviewer marked on an image (a stored mask), which "Fix region" opens as an inpainting mask.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from studio.db.base import Base, UTCDateTime, utcnow

EDIT_KINDS = ("img2img", "inpaint", "expand", "upscale")


class ImageEdit(Base):
    """How one image was made by editing another (one row per edited image)."""

    __tablename__ = "image_edits"
    __table_args__ = (
        CheckConstraint("kind IN ('img2img', 'inpaint', 'expand', 'upscale')", name="kind"),
        Index("ix_image_edits_parent", "parent_image_id"),
        Index("ix_image_edits_group", "group_id"),
    )

    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    #: the image edited (None when the source was an uploaded file, or the parent was deleted)
    parent_image_id: Mapped[int | None] = mapped_column(
        ForeignKey("images.id", ondelete="SET NULL"), nullable=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    strength: Mapped[float] = mapped_column(Float)
    #: sha256 of the source PNG in the edit store (what ``regenerate`` starts from)
    source_sha256: Mapped[str] = mapped_column(String(64))
    mask_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    mask_blur: Mapped[int | None] = mapped_column(Integer, nullable=True)
    anchor: Mapped[str | None] = mapped_column(String(16), nullable=True)
    scale: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: images made by one campaign request (expand to every size preset) share it
    group_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ImageRegion(Base):
    """A region a reviewer marked on an image (a stored mask, white = the region), with a note."""

    __tablename__ = "image_regions"
    __table_args__ = (Index("ix_image_regions_image_created", "image_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    mask_sha256: Mapped[str] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
