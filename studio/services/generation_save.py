"""Saving a generation: each image as a PNG that carries its recipe, then the rows in one transaction.

:meth:`GenerationSaver.save` writes the files atomically first and adds the generation, its images and the
audit event in one transaction; if that fails the files are removed again, so a generation is saved whole
or not at all (InvokeAI's ``images_default`` pattern). Each saved image also gets a link under its download
name (``<brand>-<id>-<seed>.png``). Every PNG is signed with Content Credentials (C2PA, see
:mod:`studio.services.credentials`) before it is written; pixels and text chunks stay as they were.
"""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session, sessionmaker

from studio.config import Settings
from studio.db.base import utcnow
from studio.db.generation_models import Generation, GenerationLora, GenerationTemplate, Image
from studio.errors import StudioError
from studio.services import audit
from studio.services.credentials import generated_signer
from studio.services.generation_plan import Plan
from studio.services.views import Actor
from studio.storage import atomic_write_bytes

if TYPE_CHECKING:  # pragma: no cover
    from PIL.Image import Image as PILImage

    from studio.engine.generate import GeneratedImage
    from studio.engine.request import GenerationRequest


@dataclass(frozen=True)
class ImageView:
    """A saved image: ``path`` is absolute (inside ``settings.images_dir``), ``file_path`` relative to it."""

    id: int
    generation_id: int
    brand_slug: str
    path: Path
    file_path: str
    file_sha256: str
    pixel_sha256: str
    seed: int
    width: int
    height: int
    review_status: str
    palette_score: float | None
    palette_flag: bool
    palette_misses: tuple[dict[str, Any], ...]
    #: a link to the file named ``<brand>-<id>-<seed>.png`` for downloads (the Generate tab's results)
    download_path: Path | None = None

    @property
    def download_name(self) -> str:
        return f"{self.brand_slug}-{self.id}-{self.seed}.png"


@dataclass(frozen=True)
class GenerationResult:
    """One generation: its id, the prompts as sent, the base seed and the saved images.

    ``cancelled``: the run was cancelled after ``len(images)`` of the ``requested`` images were finished
    (those are saved and returned)."""

    generation_id: int
    brand_slug: str
    prompt: str
    negative_prompt: str
    cfg: float
    seed: int
    images: tuple[ImageView, ...]
    cancelled: bool = False
    requested: int = 0


class GenerationSaver:
    """Writes a generation's PNG files and rows (see the module docstring)."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings

    def save(
        self,
        actor: Actor,
        plan: Plan,
        request: GenerationRequest,
        images: list[GeneratedImage],
        *,
        within: Callable[[Session, Generation], None] | None = None,
    ) -> GenerationResult:
        """Write the PNG files, then the rows in one transaction; remove the files if the rows fail.
        ``within(session, generation)`` runs last inside that transaction (raising undoes it all)."""
        from studio.engine.control import image_sha256
        from studio.engine.recipe import png_metadata
        from studio.palette import palette_score

        sign = generated_signer(self._sessions, self._settings, plan)  # C2PA signing: fails before writes
        written: list[Path] = []
        rows: list[Image] = []
        day = utcnow().strftime("%Y%m%d")
        try:
            for item in images:
                data = sign(item, png_bytes(item.image, png_metadata(item.recipe)))
                relative = f"{plan.brand_slug}/{day}/{uuid.uuid4().hex}.png"
                path = self._settings.images_dir / relative
                atomic_write_bytes(path, data)
                written.append(path)
                score = palette_score(item.image, plan.palette, plan.palette_threshold)
                rows.append(
                    Image(
                        brand_id=plan.brand_id,
                        user_id=plan.user_id,
                        file_path=relative,
                        file_sha256=hashlib.sha256(data).hexdigest(),
                        pixel_sha256=image_sha256(item.image),
                        seed=item.seed,
                        width=item.image.width,
                        height=item.image.height,
                        review_status="pending",
                        palette_score=score.score,
                        palette_flag=score.flagged,
                        palette_misses=score.misses_json(),
                    )
                )
            first = images[0].recipe
            generation = Generation(
                user_id=plan.user_id,
                brand_id=plan.brand_id,
                recipe=first.to_dict(),
                prompt=plan.prompt,
                final_prompt=first.prompt,
                negative_prompt=plan.negative_prompt,
                final_negative_prompt=first.negative_prompt,
                sampler=first.sampler,
                steps=first.steps,
                cfg=first.guidance_scale,
                seed=first.seed,
                width=first.width,
                height=first.height,
                batch_size=len(images),
                base_model=first.base_model,
                base_model_revision=first.base_model_revision,
                loras=[
                    GenerationLora(
                        lora_version_id=lora.version_id or None,
                        adapter_name=lora.adapter,
                        sha256=lora.sha256,
                        weight=lora.weight,
                    )
                    for lora in plan.loras
                ],
                templates=[
                    GenerationTemplate(
                        template_id=template.template_id or None,
                        template_name=template.name,
                        control_image_sha256=entry.control_image_sha256,
                        conditioning_scale=entry.scale,
                        guidance_start=entry.start,
                        guidance_end=entry.end,
                    )
                    for template, entry in zip(plan.templates, first.controls, strict=True)
                ],
                images=rows,
            )
            with self._sessions.begin() as session:
                session.add(generation)
                session.flush()
                audit.record(
                    session,
                    actor,
                    "generation.create",
                    f"generation:{generation.id}",
                    brand=plan.brand_slug,
                    images=[row.id for row in rows],
                )
                if within is not None:  # the caller's part of the same transaction (a queued job ends)
                    within(session, generation)
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
        views = (self.image_view(row, generation, plan.brand_slug) for row in rows)
        return GenerationResult(
            generation_id=generation.id,
            brand_slug=plan.brand_slug,
            prompt=generation.final_prompt,
            negative_prompt=generation.final_negative_prompt,
            cfg=generation.cfg,
            seed=generation.seed,
            images=tuple(replace(view, download_path=self.download_link(view)) for view in views),
        )

    @property
    def downloads_dir(self) -> Path:
        """Links to saved images under their download names (served to the browser, as exports are)."""
        return self._settings.home / "exports" / "downloads"

    def download_link(self, view: ImageView) -> Path | None:
        """A hard link (or, where links do not work, a copy) of the image named ``<brand>-<id>-<seed>.png``;
        None when neither can be made (the image itself is saved either way)."""
        target = self.downloads_dir / view.download_name
        if target.is_file():
            return target
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(view.path, target)
            except FileExistsError:
                pass
            except OSError:
                atomic_write_bytes(target, view.path.read_bytes())
        except (OSError, StudioError):
            return None
        return target

    def image_view(self, image: Image, generation: Generation, slug: str) -> ImageView:
        return ImageView(
            id=image.id,
            generation_id=generation.id,
            brand_slug=slug,
            path=self._settings.images_dir / image.file_path,
            file_path=image.file_path,
            file_sha256=image.file_sha256,
            pixel_sha256=image.pixel_sha256,
            seed=image.seed,
            width=image.width,
            height=image.height,
            review_status=image.review_status,
            palette_score=image.palette_score,
            palette_flag=image.palette_flag,
            palette_misses=tuple(image.palette_misses or ()),
        )


def png_bytes(image: PILImage, pnginfo: Any = None) -> bytes:
    """``image`` as PNG bytes (with ``pnginfo`` text chunks)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=pnginfo)
    return buffer.getvalue()
