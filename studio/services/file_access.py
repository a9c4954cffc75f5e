"""Which stored file a user may download: the one check behind the web app's file links.

Every answer reads the database as it is now, so a revoke, a disable or a review takes effect on the next
request. Anything the actor may not have is reported as missing (``NotFoundError``), exactly like a file that
does not exist, so a link reveals nothing:

- a generated image follows the gallery's rule (:mod:`studio.services.visibility`);
- training samples and quality-gate images (files a job's checkpoint names) are for admins;
- an export zip is for the user who made it (its ``export.create`` audit event names them);
- a brand LoRA's export file is for admins and the brand's members;
- a layout template's pictures (its source image, its control map) are for admins and the brand's members;
- a dataset's images, and their thumbnails, are for admins (as the Training tab).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from studio.config import Settings
from studio.db.models import AuditEvent, ControlTemplate, DatasetImage, JobCheckpoint
from studio.errors import NotFoundError, PermissionDeniedError
from studio.services.permissions import actor_user, readable_brand
from studio.services.views import Actor
from studio.services.visibility import visible_image
from studio.storage.paths import home_path
from studio.storage.thumbnails import thumbnail

#: The names ``GalleryExport`` gives its zips (a random part: they cannot be guessed).
EXPORT_NAME = re.compile(r"^export-[0-9]{8}-[0-9]{6}-[0-9a-f]{32}\.zip$")
#: The image sets of a checkpoint: its samples, and the quality gate's four sets.
TRAINING_SETS = ("samples", "lora", "lora_plain", "base", "base_plain")
#: A template's pictures: ``picture`` is its source image (its control map when it has none), as the Generate
#: form's tiles show it; ``control`` is the control map.
TEMPLATE_PICTURES = ("picture", "control")


class FileAccessService:
    """Resolve a file link to the file it names, for one actor (see the module docstring)."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings

    def image(self, actor: Actor, image_id: Any) -> Path:
        """The file of a generated image the actor may see in the gallery."""
        with self._sessions() as session:
            _known_user(session, actor)
            image = visible_image(session, actor, image_id)
            return self._existing(self._settings.images_dir / image.file_path, f"image {image_id}")

    def training_image(self, actor: Actor, job_id: Any, step: Any, image_set: str, index: Any) -> Path:
        """Image ``index`` of set ``image_set`` of a job's checkpoint at ``step`` (admins only)."""
        what = f"training image {job_id}/{step}/{image_set}/{index}"
        if image_set not in TRAINING_SETS:
            raise NotFoundError(f"{what} not found")
        with self._sessions() as session:
            user = _known_user(session, actor)
            if user is not None and "admin" not in user.role_names:
                raise NotFoundError(f"{what} not found")
            checkpoint = session.scalar(
                select(JobCheckpoint).where(
                    JobCheckpoint.job_id == _number(job_id, what), JobCheckpoint.step == _number(step, what)
                )
            )
            if checkpoint is None:
                raise NotFoundError(f"{what} not found")
            if image_set == "samples":
                names = list(checkpoint.sample_paths or [])
            else:
                names = list(((checkpoint.quality or {}).get("images") or {}).get(image_set) or [])
            position = _number(index, what, minimum=0)
            if position >= len(names):
                raise NotFoundError(f"{what} not found")
            return self._existing(home_path(self._settings.home, names[position]), what)

    def export(self, actor: Actor, name: str) -> Path:
        """An export zip in the exports folder, for the user who made it."""
        what = f"export {name}"
        if not EXPORT_NAME.match(name or ""):
            raise NotFoundError(f"{what} not found")
        path = self._settings.home / "exports" / name
        with self._sessions() as session:
            user = _known_user(session, actor)
            maker = select(AuditEvent.id).where(
                AuditEvent.action == "export.create", AuditEvent.target == str(path)
            )
            if user is not None:
                maker = maker.where(func.lower(AuditEvent.actor) == user.username.lower())
            if session.scalar(maker.limit(1)) is None:
                raise NotFoundError(f"{what} not found")
        return self._existing(path, what)

    def template(self, actor: Actor, brand: str, name: str, picture: str) -> Path:
        """A picture (:data:`TEMPLATE_PICTURES`) of a brand's layout template (admins and its members)."""
        what = f"template {brand}/{name} ({picture})"
        if picture not in TEMPLATE_PICTURES:
            raise NotFoundError(f"{what} not found")
        with self._sessions() as session:
            _known_user(session, actor)
            try:
                row, _ = readable_brand(session, actor, brand)
            except NotFoundError:
                raise NotFoundError(f"{what} not found") from None
            template = session.scalar(
                select(ControlTemplate).where(
                    ControlTemplate.brand_id == row.id, ControlTemplate.name == name
                )
            )
            if template is None:
                raise NotFoundError(f"{what} not found")
            stored = template.control_image_path
            if picture == "picture":
                stored = template.source_image_path or stored
        if not stored:
            raise NotFoundError(f"{what} not found")
        return self._existing(home_path(self._settings.home, stored), what)

    def dataset_image(self, actor: Actor, dataset_id: Any, image_id: Any) -> Path:
        """Image ``image_id`` of dataset ``dataset_id`` (admins only)."""
        return self._dataset_file(actor, dataset_id, image_id)[0]

    def dataset_thumbnail(self, actor: Actor, dataset_id: Any, image_id: Any) -> Path:
        """A small PNG of the same image, for the Training tab's grid (the same check; made once and kept
        under ``cache/thumbnails``, keyed by the image's content hash)."""
        path, sha256 = self._dataset_file(actor, dataset_id, image_id)
        try:
            return thumbnail(path, self._settings.home / "cache" / "thumbnails", sha256)
        except (OSError, ValueError) as exc:  # an unreadable file, a bad hash: missing, as the link says
            raise NotFoundError(f"dataset image {dataset_id}/{image_id} not found") from exc

    def _dataset_file(self, actor: Actor, dataset_id: Any, image_id: Any) -> tuple[Path, str]:
        """A dataset image's file and content hash, for admins (anyone else: NotFoundError)."""
        what = f"dataset image {dataset_id}/{image_id}"
        with self._sessions() as session:
            user = _known_user(session, actor)
            if user is not None and "admin" not in user.role_names:
                raise NotFoundError(f"{what} not found")
            image = session.get(DatasetImage, _number(image_id, what))
            if image is None or image.dataset_id != _number(dataset_id, what):
                raise NotFoundError(f"{what} not found")
            stored, sha256 = image.file_path, image.sha256
        return self._existing(home_path(self._settings.home, stored), what), sha256

    def lora(self, actor: Actor, slug: str, adapter: str, version: Any, fmt: str) -> Path:
        """A brand LoRA version's export file (admins and the brand's members; see
        :meth:`~studio.services.brand_loras.BrandLoraService.export_lora`)."""
        from studio.errors import StudioError
        from studio.services.brand_loras import BrandLoraService
        from studio.services.brands import BrandService

        what = f"LoRA {slug}/{adapter} version {version} ({fmt})"
        loras = BrandLoraService(self._sessions, self._settings, BrandService(self._sessions, self._settings))
        try:
            return loras.export_lora(actor, slug, adapter, _number(version, what), fmt).path
        except StudioError:
            raise NotFoundError(f"{what} not found") from None

    @staticmethod
    def _existing(path: Path, what: str) -> Path:
        if not path.is_file():
            raise NotFoundError(f"{what} not found")
        return path


def _known_user(session: Session, actor: Actor) -> Any:
    """The actor's user row (None for SYSTEM); an unknown or disabled user gets NotFoundError."""
    try:
        return actor_user(session, actor)
    except PermissionDeniedError:
        raise NotFoundError("file not found") from None


def _number(value: Any, what: str, *, minimum: int = 1) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise NotFoundError(f"{what} not found") from None
    if number < minimum:
        raise NotFoundError(f"{what} not found")
    return number
