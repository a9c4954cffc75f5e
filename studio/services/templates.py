"""Layout (ControlNet) templates made by admins from an uploaded image with a preprocessor.

``preview`` returns the control map without writing anything, so an admin sees it before saving;
``create`` stores the source image and the control map content-addressed under ``settings.templates_dir`` and
adds the ``control_templates`` row. Offline preprocessors: canny, shuffle, lineart_standard (and none: the
image is the map); the others raise the engine's missing-weights ModelError.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from studio.config import Settings
from studio.db.models import Brand, ControlTemplate
from studio.errors import ConflictError, ValidationError
from studio.services import audit
from studio.services.brand_files import NAME_RE
from studio.services.brand_models import effective_model
from studio.services.generation import EngineProvider
from studio.services.generation_controls import control_map_size
from studio.services.permissions import readable_brand, require_admin
from studio.services.views import Actor, ControlTemplateView
from studio.storage import ContentStore, stored_path

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image as PILImage

ImageSource = bytes | str | Path

_SUFFIX_BY_FORMAT = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}


def _check_window(scale: Any, start: Any, end: Any) -> tuple[float, float, float]:
    try:
        values = float(scale), float(start), float(end)
    except (TypeError, ValueError):
        raise ValidationError("conditioning_scale", "scale, start and end must be numbers") from None
    scale_f, start_f, end_f = values
    if not 0.0 <= scale_f <= 2.0:
        raise ValidationError("conditioning_scale", f"{scale_f:g} is outside 0-2")
    if not 0.0 <= start_f < end_f <= 1.0:
        raise ValidationError("guidance_start", "the guidance window needs 0 ≤ start < end ≤ 1")
    return values


class TemplateService:
    """Create layout templates (admins) and preview their control maps."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings, engines: EngineProvider) -> None:
        self._sessions = sessions
        self._settings = settings
        self._engines = engines
        self._store = ContentStore(settings.templates_dir)

    def preview(
        self,
        actor: Actor,
        brand: str,
        image: ImageSource | None,
        preprocessor: str,
        **params: Any,
    ) -> PILImage:
        """The control map ``preprocessor`` makes from ``image`` at the brand model's size; writes nothing."""
        with self._sessions() as session:
            base_model = effective_model(self._brand(session, actor, brand), self._settings)
        if image is None:
            raise ValidationError("image", "upload an image first")
        return self._control_map(image, preprocessor, base_model, params)

    def create(
        self,
        actor: Actor,
        brand: str,
        name: str,
        image: ImageSource | None,
        preprocessor: str = "canny",
        *,
        conditioning_scale: float = 1.0,
        guidance_start: float = 0.0,
        guidance_end: float = 1.0,
        controlnet_model: str | None = None,
        **params: Any,
    ) -> ControlTemplateView:
        """Make the control map, store both images and add the template (admins only; the role and the
        brand are checked before the input).

        ``controlnet_model``: the ControlNet this template uses (a diffusers folder, a cached hub repo id or
        ``embedded:…``), checked against the brand's base model; None or blank = the base model's own.
        """
        name = (name or "").strip()
        with self._sessions() as session:
            row = self._brand(session, actor, brand)
            base_model, brand_id, slug = effective_model(row, self._settings), row.id, row.slug
            if not NAME_RE.match(name):
                raise ValidationError("name", "use 1-64 lowercase letters, digits, '-' or '_'")
            if any(t.name == name for t in row.templates):
                raise ConflictError(f"brand {slug} already has a template {name!r}")
        scale, start, end = _check_window(conditioning_scale, guidance_start, guidance_end)
        controlnet = self._engines.get().check_controlnet(controlnet_model, base_model)
        source_bytes, suffix = self._source_bytes(image)
        control = self._control_map(source_bytes, preprocessor, base_model, params)
        from studio.engine.control import canonical_preprocessor

        canonical = canonical_preprocessor(preprocessor)
        source = self._store.put_bytes(source_bytes, suffix)
        buffer = io.BytesIO()
        control.save(buffer, format="PNG")
        control_file = self._store.put_bytes(buffer.getvalue(), ".png")
        with self._sessions.begin() as session:
            if session.query(ControlTemplate).filter_by(brand_id=brand_id, name=name).first() is not None:
                raise ConflictError(f"brand {slug} already has a template {name!r}")
            template = ControlTemplate(
                brand_id=brand_id,
                name=name,
                preprocessor=canonical,
                source_image_path=stored_path(self._settings.home, source.path),
                source_image_sha256=source.sha256,
                control_image_path=stored_path(self._settings.home, control_file.path),
                conditioning_scale=scale,
                guidance_start=start,
                guidance_end=end,
                controlnet_model=controlnet,
            )
            session.add(template)
            session.flush()
            audit.record(
                session,
                actor,
                "template.create",
                f"brand:{slug}",
                name=name,
                preprocessor=canonical,
                controlnet=controlnet,
            )
            return ControlTemplateView(
                id=template.id,
                brand_slug=slug,
                name=name,
                preprocessor=canonical,
                source_file=None,
                source_image_path=source.path,
                source_image_sha256=source.sha256,
                control_image_path=control_file.path,
                conditioning_scale=scale,
                guidance_start=start,
                guidance_end=end,
                controlnet_model=controlnet,
            )

    # ------------------------------------------------------------------------------------------- helpers

    @staticmethod
    def _brand(session: Session, actor: Actor, slug: str) -> Brand:
        require_admin(session, actor)
        brand, _ = readable_brand(session, actor, (slug or "").strip())
        return brand

    def _control_map(
        self, image: ImageSource, preprocessor: str, base_model: str, params: dict[str, Any]
    ) -> Any:
        from studio.engine.control import make_control_map

        info = self._engines.get().model_info(base_model)
        return make_control_map(image, preprocessor, *control_map_size(info), **params)

    def _source_bytes(self, image: ImageSource | None) -> tuple[bytes, str]:
        """The uploaded file's bytes (size-limited, decodable, no decompression bomb) and its suffix."""
        from PIL import Image as PILImageModule

        from studio.engine.control import load_image

        if image is None:
            raise ValidationError("image", "upload an image first")
        if isinstance(image, bytes | bytearray):
            data = bytes(image)
        else:
            path = Path(image)
            if not path.is_file():
                raise ValidationError("image", f"{path.name}: no such file")
            data = path.read_bytes()
        limit = self._settings.max_upload_mb * 1024 * 1024
        if len(data) > limit:
            raise ValidationError("image", f"the file is larger than {self._settings.max_upload_mb} MB")
        load_image(data, "image")  # refuses non-images and decompression bombs
        with PILImageModule.open(io.BytesIO(data)) as opened:
            suffix = _SUFFIX_BY_FORMAT.get(opened.format or "")
        if suffix is None:
            raise ValidationError("image", "use a PNG, JPEG or WebP image")
        return data, suffix
