"""SQLAlchemy 2 typed models. The schema only changes through Alembic migrations (``migrations/``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from studio.db.base import Base, UTCDateTime, utcnow

ROLES = ("admin", "marketer", "reviewer")
LORA_KINDS = ("style", "subject")


class User(Base):
    """A person who logs in. Failed logins are counted in ``login_throttles`` (per client address);
    ``session_epoch`` moves when their sessions must end (password reset, disabled, a role taken away)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    session_epoch: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    roles: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )
    memberships: Mapped[list[BrandMember]] = relationship(back_populates="user", cascade="all, delete-orphan")

    @property
    def role_names(self) -> frozenset[str]:
        return frozenset(r.role for r in self.roles)


class UserRole(Base):
    """One role of a user; a user's roles are a set."""

    __tablename__ = "user_roles"
    __table_args__ = (CheckConstraint("role IN ('admin', 'marketer', 'reviewer')", name="role"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16), primary_key=True)

    user: Mapped[User] = relationship(back_populates="roles")


class Brand(Base):
    """A brand profile (mirrors ``brands/<slug>/brand.toml``)."""

    __tablename__ = "brands"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    palette: Mapped[list[str]] = mapped_column(JSON, default=list)
    palette_threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    style_template: Mapped[str] = mapped_column(Text, default="{prompt}")
    negative_prompt: Mapped[str] = mapped_column(Text, default="")
    banned_terms: Mapped[list[str]] = mapped_column(JSON, default=list)
    size_presets: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    default_size: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: whether a size outside ``size_presets`` (``WIDTHxHEIGHT``) may be asked for (an admin's choice)
    allow_custom_sizes: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    #: Content Credentials: put the prompts in the signed manifest (off: campaign prompts stay confidential)
    credentials_include_prompt: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    default_cfg: Mapped[float] = mapped_column(Float, default=7.0)
    default_steps: Mapped[int] = mapped_column(Integer, default=20)
    default_sampler: Mapped[str] = mapped_column(String(32), default="Euler a")
    #: the brand's default guidance beyond plain CFG (the non-default fields of
    #: :class:`studio.engine.guidance_settings.Guidance`); None = plain CFG
    default_guidance: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    #: the model an admin pinned; None = the studio default (follows STUDIO_BASE_MODEL), see
    #: :func:`studio.services.brand_models.effective_model`
    base_model: Mapped[str | None] = mapped_column(String(300), nullable=True)
    source_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    members: Mapped[list[BrandMember]] = relationship(back_populates="brand", cascade="all, delete-orphan")
    adapters: Mapped[list[LoraAdapter]] = relationship(
        back_populates="brand", cascade="all, delete-orphan", order_by="LoraAdapter.name"
    )
    templates: Mapped[list[ControlTemplate]] = relationship(
        back_populates="brand", cascade="all, delete-orphan", order_by="ControlTemplate.name"
    )


class BrandMember(Base):
    """A user's membership of a brand (members may read the brand and generate with it)."""

    __tablename__ = "brand_members"

    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    brand: Mapped[Brand] = relationship(back_populates="members")
    user: Mapped[User] = relationship(back_populates="memberships")


class LoraAdapter(Base):
    """A named LoRA of a brand; its files are versions, one of which is active."""

    __tablename__ = "lora_adapters"
    __table_args__ = (
        UniqueConstraint("brand_id", "name"),
        CheckConstraint("kind IN ('style', 'subject')", name="kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    trigger_words: Mapped[list[str]] = mapped_column(JSON, default=list)
    default_weight: Mapped[float] = mapped_column(Float, default=1.0)
    source_file: Mapped[str | None] = mapped_column(Text, nullable=True)
    active_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("lora_versions.id", ondelete="SET NULL", use_alter=True), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    brand: Mapped[Brand] = relationship(back_populates="adapters")
    versions: Mapped[list[LoraVersion]] = relationship(
        back_populates="adapter",
        cascade="all, delete-orphan",
        foreign_keys="LoraVersion.adapter_id",
        order_by="LoraVersion.id",
    )
    active_version: Mapped[LoraVersion | None] = relationship(
        foreign_keys=[active_version_id], post_update=True
    )


class LoraVersion(Base):
    """One LoRA file (content-addressed by sha256) of an adapter."""

    __tablename__ = "lora_versions"
    __table_args__ = (UniqueConstraint("adapter_id", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    adapter_id: Mapped[int] = mapped_column(ForeignKey("lora_adapters.id", ondelete="CASCADE"), index=True)
    file_path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    rank: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: the model it was trained on (published) or added for (upload, sync)
    base_model: Mapped[str] = mapped_column(String(300))
    #: that model's family (sd1, sd2, sdxl, sd3, flux); None = unknown (rows from before it was recorded)
    family: Mapped[str | None] = mapped_column(String(16), nullable=True)
    source_job_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    published: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    adapter: Mapped[LoraAdapter] = relationship(back_populates="versions", foreign_keys=[adapter_id])


class ControlTemplate(Base):
    """A ControlNet layout template of a brand."""

    __tablename__ = "control_templates"
    __table_args__ = (UniqueConstraint("brand_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    brand_id: Mapped[int] = mapped_column(ForeignKey("brands.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    preprocessor: Mapped[str] = mapped_column(String(32))
    source_file: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_image_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    source_image_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    control_image_path: Mapped[str | None] = mapped_column(Text, nullable=True)
    conditioning_scale: Mapped[float] = mapped_column(Float, default=1.0)
    guidance_start: Mapped[float] = mapped_column(Float, default=0.0)
    guidance_end: Mapped[float] = mapped_column(Float, default=1.0)
    #: ControlNet model reference (folder, hub id, ``embedded:…``); None = the base model's own/configured one
    controlnet_model: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    brand: Mapped[Brand] = relationship(back_populates="templates")


class AuditEvent(Base):
    """Who did what, when. ``actor`` is a username or ``system``; details never hold secrets."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str | None] = mapped_column(String(200), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# Tables added by later migrations live in their own modules; importing them here registers them on
# Base.metadata for Alembic and the app.
from studio.db.generation_models import (  # noqa: E402,F401
    Generation,
    GenerationLora,
    GenerationTemplate,
    Image,
)
from studio.db.login_models import LoginThrottle  # noqa: E402,F401
from studio.db.training_models import Dataset, DatasetImage, Job, JobCheckpoint  # noqa: E402,F401
