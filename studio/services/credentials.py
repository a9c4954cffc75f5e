"""Content Credentials in the studio: signing at save and export, the brand's prompt setting, and the
gallery's check of an image (see :mod:`studio.provenance` for the SDK side)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from studio.config import Settings
from studio.db.generation_models import Image
from studio.db.models import Brand
from studio.errors import NotFoundError
from studio.provenance import manifest as mf
from studio.provenance.keys import ensure_credentials
from studio.provenance.sign import (
    credentials_for,
    forget_credentials,
    sign_approved,
    sign_edited,
    sign_generated,
)
from studio.provenance.verify import Verification, describe, verify_png
from studio.services import audit
from studio.services.permissions import readable_brand, require_admin
from studio.services.views import Actor
from studio.services.visibility import visible_image

if TYPE_CHECKING:  # pragma: no cover
    from studio.engine.generate import GeneratedImage
    from studio.services.generation_plan import Plan


def ensure_at_start(settings: Settings) -> bool:
    """Make this install's keys when there are none, then read and check the ones in use, so a missing or
    unreadable key stops the start with a clear error (CredentialsError) rather than a later save.
    True when keys were made now."""
    forget_credentials()
    _, made = ensure_credentials(settings)
    credentials_for(settings)
    return made


def generated_signer(
    sessions: sessionmaker[Session], settings: Settings, plan: Plan
) -> Callable[[GeneratedImage, bytes], bytes]:
    """``sign(item, png)``: ``png`` (one image of ``plan``) signed with a ``c2pa.created`` manifest, or, when
    its recipe says it is an edit (``recipe.edit``), a ``c2pa.edited`` one with the parent image (from the
    gallery) as ingredient. The credentials and the brand's prompt setting are read here, before any file
    is written."""
    from studio.engine.control import image_sha256

    credentials_for(settings)
    with sessions() as session:
        brand = session.get(Brand, plan.brand_id)
        include_prompt = bool(brand and brand.credentials_include_prompt)
    templates = [template.name for template in plan.templates]

    def sign(item: GeneratedImage, png: bytes) -> bytes:
        data = mf.recipe_assertion(
            item.recipe,
            brand=plan.brand_slug,
            templates=templates,
            pixel_sha256=image_sha256(item.image),
            include_prompt=include_prompt,
        )
        title = f"{plan.brand_slug}-{item.seed}.png"
        edit = getattr(item.recipe, "edit", None)
        if edit is None:
            return sign_generated(settings, png, data, title=title)
        kind = str(edit.kind)
        source_type = mf.EDIT_SOURCE_TYPES.get(kind, mf.COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA)
        description = f"{kind} at strength {edit.strength:g}"
        parent = _parent_png(sessions, settings, edit.parent_image_id)
        if parent is None:  # a source from outside the studio: only its hash is known (in the recipe data)
            return sign_generated(
                settings, png, data, title=title, source_type=source_type, description=description
            )
        return sign_edited(
            settings, png, parent, data, title=title, description=description, source_type=source_type
        )

    return sign


def _parent_png(sessions: sessionmaker[Session], settings: Settings, image_id: int | None) -> bytes | None:
    """The stored PNG of the gallery image an edit started from (None: none, or its file is gone)."""
    if image_id is None:
        return None
    with sessions() as session:
        row = session.get(Image, image_id)
        relative = row.file_path if row is not None else None
    path = settings.images_dir / relative if relative else None
    return path.read_bytes() if path is not None and path.is_file() else None


@dataclass(frozen=True)
class ImageCredentials:
    """The gallery's badge: whether the image's file validates, and the report's lines."""

    image_id: int
    verification: Verification
    lines: tuple[str, ...]

    @property
    def badge(self) -> str:
        if not self.verification.has_credentials:
            return "No Content Credentials"
        return "Content Credentials ✓" if self.verification.valid else "Content Credentials: invalid"


class CredentialsService:
    """The brand's prompt setting and checking an image's credentials."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings

    def include_prompt(self, actor: Actor, slug: str) -> bool:
        """Whether the brand's manifests carry the prompts."""
        with self._sessions() as session:
            brand, _ = readable_brand(session, actor, slug)
            return brand.credentials_include_prompt

    def set_include_prompt(self, actor: Actor, slug: str, include: bool) -> None:
        """Admins only: the brand's manifests from now on carry the prompts (or leave them out)."""
        with self._sessions.begin() as session:
            require_admin(session, actor)
            brand = session.query(Brand).filter_by(slug=slug).one_or_none()
            if brand is None:
                raise NotFoundError(f"brand {slug!r} not found")
            brand.credentials_include_prompt = include
            audit.record(session, actor, "brand.credentials_prompt", f"brand:{slug}", include=include)

    def check_image(self, actor: Actor, image_id: Any) -> ImageCredentials:
        """Read the image's file with the C2PA SDK (NotFoundError when the actor cannot see it)."""
        with self._sessions() as session:
            image = visible_image(session, actor, image_id)
            number, relative = image.id, image.file_path
        path = self._settings.images_dir / relative
        if not path.is_file():
            raise NotFoundError(f"image {number}: its file is missing")
        verification = verify_png(path.read_bytes(), credentials_for(self._settings).anchors_pem)
        return ImageCredentials(number, verification, tuple(describe(verification)))


def approved_png(settings: Settings) -> Callable[[dict[str, Any], bytes], bytes]:
    """``sign(record, png)`` for the export: ``png`` with a second manifest recording the approval in the
    export ``record`` (reviewer, decision_time, review_comment, id). The credentials are read here, before
    the export is written."""
    credentials_for(settings)

    def sign(record: dict[str, Any], png: bytes) -> bytes:
        return sign_approved(
            settings,
            png,
            title=f"{record['brand']}-{record['id']}-{record['seed']}.png",
            reviewer=record.get("reviewer") or None,
            approved_at=record.get("decision_time") or None,
            comment=record.get("review_comment") or "",
            image_id=record["id"],
        )

    return sign
