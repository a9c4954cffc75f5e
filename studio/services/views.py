"""Plain frozen views that services return (never ORM objects), and the actor who calls a service."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from studio.services.brand_files import SizePreset
from studio.services.brand_models import model_label


@dataclass(frozen=True)
class Actor:
    """Who calls a service. Roles are never taken from here: services read them from the database."""

    username: str
    is_system: bool = False

    @classmethod
    def user(cls, username: str) -> Actor:
        """The actor for a logged-in user (e.g. ``gr.Request.username``)."""
        return cls(username=username)


#: The local machine acting through the CLI (someone with shell access to STUDIO_HOME): acts as an admin.
SYSTEM = Actor(username="system", is_system=True)


@dataclass(frozen=True)
class UserView:
    """A user as others may see it (no password hash)."""

    id: int
    username: str
    roles: tuple[str, ...]
    disabled: bool
    locked_until: datetime | None
    last_login_at: datetime | None
    created_at: datetime
    brands: tuple[str, ...] = ()

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


@dataclass(frozen=True)
class LoraVersionView:
    """One file of a LoRA adapter."""

    id: int
    file_path: Path
    sha256: str
    rank: int | None
    base_model: str
    source_job_id: int | None
    published: bool
    created_at: datetime
    family: str | None = None  # of the model it was trained on / added for; None = unknown
    number: int = 0  # its number within its adapter: 1 for the first version (ids count across adapters)


@dataclass(frozen=True)
class LoraAdapterView:
    """A brand's LoRA; ``active_version`` is None until a file exists (e.g. before training)."""

    id: int
    brand_slug: str
    name: str
    kind: str
    trigger_words: tuple[str, ...]
    default_weight: float
    source_file: str | None
    active_version: LoraVersionView | None
    versions: tuple[LoraVersionView, ...]


@dataclass(frozen=True)
class ControlTemplateView:
    """A brand's layout template; ``control_image_path`` is None until the control map is made."""

    id: int
    brand_slug: str
    name: str
    preprocessor: str
    source_file: str | None
    source_image_path: Path | None
    source_image_sha256: str | None
    control_image_path: Path | None
    conditioning_scale: float
    guidance_start: float
    guidance_end: float
    controlnet_model: str | None = None  # None = the base model's own/configured ControlNet


@dataclass(frozen=True)
class BrandSummary:
    """A brand in a list."""

    slug: str
    name: str
    description: str
    palette: tuple[str, ...]
    base_model: str  # the effective model (pinned, else the studio default)
    lora_count: int
    template_count: int
    model_pinned: bool = False

    @property
    def model_label(self) -> str:
        return model_label(self.base_model, self.model_pinned)

    def as_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "name": self.name,
            "description": self.description,
            "palette": list(self.palette),
            "base_model": self.base_model,
            "model_pinned": self.model_pinned,
            "loras": self.lora_count,
            "templates": self.template_count,
        }


@dataclass(frozen=True)
class BrandView:
    """Everything about one brand. ``members`` is filled for admins only (empty for others)."""

    id: int
    slug: str
    name: str
    description: str
    palette: tuple[str, ...]
    palette_threshold: float | None
    style_template: str
    negative_prompt: str
    banned_terms: tuple[str, ...]
    size_presets: tuple[SizePreset, ...]
    default_size: str | None
    default_cfg: float
    default_steps: int
    default_sampler: str
    base_model: str  # the effective model: pinned (``model_pinned``), else the studio default
    source_path: str | None
    created_at: datetime
    updated_at: datetime
    adapters: tuple[LoraAdapterView, ...] = ()
    templates: tuple[ControlTemplateView, ...] = ()
    members: tuple[str, ...] = ()
    model_pinned: bool = False
    allow_custom_sizes: bool = False  # sizes outside the presets may be asked for
    credentials_include_prompt: bool = False  # the prompts go into the Content Credentials (C2PA)
    #: the non-default fields of studio.engine.guidance_settings.Guidance; None = plain CFG
    default_guidance: dict[str, Any] | None = None

    @property
    def model_label(self) -> str:
        """``<model> (pinned)`` or ``<model> (default: follows STUDIO_BASE_MODEL)``."""
        return model_label(self.base_model, self.model_pinned)

    def size(self, name: str | None = None) -> SizePreset | None:
        """The named size preset (default: the brand's default size)."""
        wanted = name or self.default_size
        return next((p for p in self.size_presets if p.name == wanted), None)


@dataclass(frozen=True)
class BrandSyncResult:
    """What a sync did to one brand: ``created``, ``updated`` or ``unchanged``, with warnings."""

    slug: str
    status: str
    source: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class SyncReport:
    """What a sync did to every brand it read."""

    results: tuple[BrandSyncResult, ...] = field(default=())

    @property
    def changed(self) -> bool:
        return any(r.status != "unchanged" for r in self.results)


@dataclass(frozen=True)
class AuditEventView:
    """One audit event."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    details: dict[str, Any]


@dataclass(frozen=True)
class AdminBootstrap:
    """What :meth:`UserService.ensure_admin` did; ``password`` is set only when it generated one."""

    created: bool
    username: str | None
    password: str | None = field(default=None, repr=False)
