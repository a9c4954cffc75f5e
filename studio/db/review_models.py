"""Reviews of images (migration 0004), and the extra image indexes the gallery filters on.

A :class:`Review` row is one transition of an image's review status: ``approve`` (pending → approved),
``reject`` (pending → rejected, comment required) or ``reopen`` (approved|rejected → pending, with a
reason).
Rows are never updated or deleted while the image lives: together they are the image's history.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from studio.db.base import Base, UTCDateTime, utcnow
from studio.db.generation_models import Image

REVIEW_DECISIONS = ("approve", "reject", "reopen")


class Review(Base):
    """One review transition: who moved which image from which status to which, why, and when."""

    __tablename__ = "reviews"
    __table_args__ = (
        CheckConstraint("decision IN ('approve', 'reject', 'reopen')", name="decision"),
        CheckConstraint("from_status IN ('pending', 'approved', 'rejected')", name="from_status"),
        CheckConstraint("to_status IN ('pending', 'approved', 'rejected')", name="to_status"),
        Index("ix_reviews_image_created", "image_id", "created_at"),
        Index("ix_reviews_reviewer_created", "reviewer_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    decision: Mapped[str] = mapped_column(String(16))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# Gallery indexes on ``images`` added by migration 0004 (the table itself is defined in generation_models):
# brand + palette flag filter, newest first; brand sorted by palette score.
Index("ix_images_brand_flag_created", Image.brand_id, Image.palette_flag, Image.created_at)
Index("ix_images_brand_score", Image.brand_id, Image.palette_score)
