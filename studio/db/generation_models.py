"""Generations and their images (migration 0002).

A :class:`Generation` is one request with its full recipe; each of its :class:`Image` rows is one PNG file
under ``settings.images_dir``. The image indexes serve the gallery (brand/status/author/date filters, newest
first) and the review queue (pending first by palette flag).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from studio.db.base import Base, UTCDateTime, utcnow

REVIEW_STATUSES = ("pending", "approved", "rejected")


class Generation(Base):
    """One generation request: who, which brand, the prompts as typed and as sent, and the full recipe."""

    __tablename__ = "generations"
    __table_args__ = (
        Index("ix_generations_brand_created", "brand_id", "created_at"),
        Index("ix_generations_user_created", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id"))
    recipe: Mapped[dict[str, Any]] = mapped_column(JSON)
    prompt: Mapped[str] = mapped_column(Text)
    final_prompt: Mapped[str] = mapped_column(Text)
    negative_prompt: Mapped[str] = mapped_column(Text, default="")
    final_negative_prompt: Mapped[str] = mapped_column(Text, default="")
    sampler: Mapped[str] = mapped_column(String(32))
    steps: Mapped[int] = mapped_column(Integer)
    cfg: Mapped[float] = mapped_column(Float)
    seed: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    batch_size: Mapped[int] = mapped_column(Integer, default=1)
    base_model: Mapped[str] = mapped_column(String(300))
    base_model_revision: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    loras: Mapped[list[GenerationLora]] = relationship(
        back_populates="generation", cascade="all, delete-orphan", order_by="GenerationLora.id"
    )
    templates: Mapped[list[GenerationTemplate]] = relationship(
        back_populates="generation", cascade="all, delete-orphan", order_by="GenerationTemplate.id"
    )
    images: Mapped[list[Image]] = relationship(
        back_populates="generation", cascade="all, delete-orphan", order_by="Image.id"
    )


class GenerationLora(Base):
    """A LoRA version used by a generation, with its weight (name and sha256 kept if the version goes)."""

    __tablename__ = "generation_loras"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), index=True)
    lora_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("lora_versions.id", ondelete="SET NULL"), nullable=True, index=True
    )
    adapter_name: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    weight: Mapped[float] = mapped_column(Float)

    generation: Mapped[Generation] = relationship(back_populates="loras")


class GenerationTemplate(Base):
    """A layout template used by a generation, with the control image hash and scale/start/end used."""

    __tablename__ = "generation_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), index=True)
    template_id: Mapped[int | None] = mapped_column(
        ForeignKey("control_templates.id", ondelete="SET NULL"), nullable=True, index=True
    )
    template_name: Mapped[str] = mapped_column(String(64))
    control_image_sha256: Mapped[str] = mapped_column(String(64))
    conditioning_scale: Mapped[float] = mapped_column(Float)
    guidance_start: Mapped[float] = mapped_column(Float)
    guidance_end: Mapped[float] = mapped_column(Float)

    generation: Mapped[Generation] = relationship(back_populates="templates")


class Image(Base):
    """One generated PNG: file (relative to the images folder), hashes, review status and palette score."""

    __tablename__ = "images"
    __table_args__ = (
        CheckConstraint("review_status IN ('pending', 'approved', 'rejected')", name="review_status"),
        Index("ix_images_brand_status_created", "brand_id", "review_status", "created_at"),
        Index("ix_images_brand_created", "brand_id", "created_at"),
        Index("ix_images_user_created", "user_id", "created_at"),
        Index("ix_images_status_flag_created", "review_status", "palette_flag", "created_at"),
        Index("ix_images_created", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    generation_id: Mapped[int] = mapped_column(ForeignKey("generations.id", ondelete="CASCADE"), index=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    file_path: Mapped[str] = mapped_column(String(500), unique=True)
    file_sha256: Mapped[str] = mapped_column(String(64))
    pixel_sha256: Mapped[str] = mapped_column(String(64), index=True)
    seed: Mapped[int] = mapped_column(BigInteger)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    review_status: Mapped[str] = mapped_column(String(16), default="pending")
    palette_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    palette_flag: Mapped[bool] = mapped_column(Boolean, default=False)
    palette_misses: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    generation: Mapped[Generation] = relationship(back_populates="images")
