"""Training datasets of a brand (admins only): uploads (many images or a zip), captions, the dataset check.

Uploads are checked whole before anything is stored (:mod:`studio.training.datasets`): a bad file refuses the
upload and nothing changes; exact duplicates are dropped with a notice. Files go to content-addressed storage
under ``settings.datasets_dir``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from studio import text_limits as limits
from studio.config import Settings
from studio.db.models import Brand, LoraAdapter
from studio.db.training_models import Dataset, DatasetImage
from studio.engine.models import native_resolution, resolve_model, size_multiple
from studio.errors import ConflictError, NotFoundError, StudioError, ValidationError
from studio.services import brand_models
from studio.services.audit import record
from studio.services.dataset_uploads import remove_unnamed, store_images
from studio.services.permissions import require_admin
from studio.services.training_views import (
    AddImagesResult,
    BucketView,
    DatasetCheck,
    DatasetImageView,
    DatasetView,
)
from studio.services.views import Actor
from studio.storage import ContentStore, home_path, stored_path
from studio.training import datasets as checks
from studio.training.buckets import BucketPlan, plan_buckets, ratio_label

MIN_IMAGES = 5
ADVISED_IMAGES = 15
MAX_CAPTION = limits.CAPTION

UploadItem = Path | str | tuple[Path | str, str]


def _name(value: str, field: str = "name") -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationError(field, "is required")
    return limits.check_length(field, text, limits.DATASET_NAME)


def _caption(value: str, field: str = "caption") -> str:
    """A caption on one line; longer than :data:`~studio.text_limits.CAPTION` is refused naming ``field``."""
    return limits.check_length(field, " ".join((value or "").split()), limits.CAPTION)


def _bucket_views(plan: BucketPlan, names: Sequence[str]) -> tuple[BucketView, ...]:
    """The plan's buckets, most images first, with their images' names."""
    groups = plan.groups()
    return tuple(
        BucketView(
            width=bucket[0],
            height=bucket[1],
            count=len(groups[bucket]),
            label=ratio_label(*bucket),
            max_crop_share=plan.max_crop_share(bucket),
            images=tuple(names[i] for i in groups[bucket]),
            line=plan.line(bucket),
        )
        for bucket in plan.buckets
    )


class DatasetService:
    """Datasets, their images and captions."""

    def __init__(self, sessions: sessionmaker[Session], settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings
        self._store = ContentStore(settings.datasets_dir)

    # ------------------------------------------------------------------------------------------ read

    def list_datasets(self, actor: Actor, brand_slug: str | None = None) -> list[DatasetView]:
        """Datasets (of one brand, or all), newest first."""
        with self._sessions() as session:
            require_admin(session, actor)
            query = select(Dataset).join(Brand).order_by(Dataset.id.desc())
            if brand_slug:
                query = query.where(Brand.slug == brand_slug)
            return [self._view(session, d) for d in session.scalars(query)]

    def get_dataset(self, actor: Actor, dataset_id: int) -> DatasetView:
        with self._sessions() as session:
            require_admin(session, actor)
            return self._view(session, self._find(session, dataset_id))

    def thumbnails(self, actor: Actor, dataset_id: int, size: int = 96) -> list[tuple[Any, str]]:
        """(PIL thumbnail, "#id caption") for each image, for the caption grid (the UI never opens files)."""
        from PIL import Image

        view = self.get_dataset(actor, dataset_id)
        out = []
        for image in view.images:
            with Image.open(image.file_path) as img:
                thumb = img.convert("RGB")
                thumb.thumbnail((size, size))
            out.append((thumb, f"#{image.id} {image.caption}"))
        return out

    def check_dataset(
        self, actor: Actor, dataset_id: int, *, trigger: str | None = None, adapter: str | None = None
    ) -> DatasetCheck:
        """Count, sizes, captions missing or without the trigger word, the aspect-ratio bucket plan at the
        native resolution of the brand's base model, and advice before training."""
        with self._sessions() as session:
            require_admin(session, actor)
            dataset = self._find(session, dataset_id)
            word = (trigger or "").strip() or self._trigger_of(session, dataset.brand_id, adapter)
            images = list(dataset.images)
            model = self._model_of(session.get(Brand, dataset.brand_id))
        sizes: dict[str, int] = {}
        for image in images:
            key = f"{image.width}x{image.height}"
            sizes[key] = sizes.get(key, 0) + 1
        label = [i.original_name or f"#{i.id}" for i in images]
        missing = tuple(n for n, i in zip(label, images, strict=True) if not i.caption.strip())
        no_trigger = tuple(
            n
            for n, i in zip(label, images, strict=True)
            if word and i.caption.strip() and word.lower() not in i.caption.lower()
        )
        sides = [min(i.width, i.height) for i in images]
        native, multiple, model_problem = self._sizes_of(model)
        plan = None
        if native:  # the same plan the trainer makes (studio.training.trainer)
            plan = plan_buckets([(i.width, i.height) for i in images], native, model_multiple=multiple)
        small = () if plan is None else tuple(
            n for n, p in zip(label, plan.placements, strict=True) if p.resized[0] > p.original[0]
        )  # fmt: skip
        shas = [i.sha256 for i in images]
        duplicates = len(shas) - len(set(shas))
        advice: list[str] = []
        if not images:
            advice.append("The dataset is empty: upload images (or a zip) first.")
        elif len(images) < MIN_IMAGES:
            advice.append(
                f"Only {len(images)} image(s): use at least {MIN_IMAGES}, ideally {ADVISED_IMAGES}+."
            )
        elif len(images) < ADVISED_IMAGES:
            advice.append(
                f"{len(images)} images can work; {ADVISED_IMAGES}+ varied images give a steadier LoRA."
            )
        if missing:
            advice.append(f"{len(missing)} image(s) have no caption: use 'Caption all' or write them.")
        if not word:
            advice.append("No trigger word: set one so prompts can switch the LoRA on.")
        elif no_trigger:
            advice.append(
                f"{len(no_trigger)} caption(s) lack the trigger word {word!r}: apply the caption template."
            )
        if model_problem:
            advice.append(f"No bucket plan: the base model's resolution cannot be read ({model_problem}).")
        if small:
            advice.append(
                f"{len(small)} image(s) are smaller than their bucket near the model's {native}×{native} px: "
                "they will be upscaled."
            )
        if plan is not None and len(plan.groups()) > 1:
            advice.append(
                f"Mixed shapes: {len(plan.groups())} aspect-ratio buckets near {native}×{native} px; "
                f"nothing is squashed, at most {plan.max_crop_share():.0%} of an image is cropped "
                "(see the bucket plan)."
            )
        if images and not advice:
            advice.append("Looks good: queue the training.")
        ready = bool(images) and not missing and bool(word) and not no_trigger
        return DatasetCheck(
            dataset_id=dataset_id,
            count=len(images),
            trigger=word,
            sizes=sizes,
            min_side=min(sides) if sides else 0,
            max_side=max(max(i.width, i.height) for i in images) if images else 0,
            missing_captions=missing,
            missing_trigger=no_trigger,
            small_images=small,
            duplicates=duplicates,
            advice=tuple(advice),
            ready=ready,
            model=model,
            native=native,
            buckets=() if plan is None else _bucket_views(plan, label),
        )

    # ----------------------------------------------------------------------------------------- write

    def create_dataset(self, actor: Actor, brand_slug: str, name: str) -> DatasetView:
        """A new empty dataset of a brand."""
        name = _name(name)
        with self._sessions.begin() as session:
            require_admin(session, actor)
            brand = session.scalar(select(Brand).where(Brand.slug == brand_slug))
            if brand is None:
                raise NotFoundError(f"brand {brand_slug!r} not found")
            if session.scalar(select(Dataset.id).where(Dataset.brand_id == brand.id, Dataset.name == name)):
                raise ConflictError(f"brand {brand_slug!r} already has a dataset named {name!r}")
            dataset = Dataset(brand_id=brand.id, name=name)
            session.add(dataset)
            session.flush()
            record(session, actor, "dataset.created", brand_slug, dataset=dataset.id, name=name)
            return self._view(session, dataset)

    def add_images(self, actor: Actor, dataset_id: int, files: Sequence[UploadItem]) -> AddImagesResult:
        """Check and add images (PNG/JPEG/WebP files or zips of them); all or nothing.

        ``files`` holds paths, or ``(path, original name)`` pairs when uploads sit under temporary names.
        """
        pairs = [(Path(f[0]), f[1]) if isinstance(f, tuple) else (Path(f), Path(f).name) for f in files]
        with self._sessions() as session:
            require_admin(session, actor)
            known = list(
                session.scalars(select(DatasetImage.sha256).where(DatasetImage.dataset_id == dataset_id))
            )
            self._find(session, dataset_id)
        limit = self._settings.max_upload_mb * 1024 * 1024
        work_root = self._settings.home / "tmp"
        work_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=work_root, prefix="upload-") as work:
            prepared = checks.prepare_uploads(pairs, Path(work), max_bytes=limit, known_hashes=known)
            captions = [_caption(img.caption, f"{img.name}: caption") for img in prepared.images]
            stored, new_files = store_images(self._store, prepared.images)
        try:
            return self._add_rows(actor, dataset_id, stored, captions, prepared.notices)
        except BaseException:
            remove_unnamed(self._sessions, self._settings.home, new_files)
            raise

    def _add_rows(
        self,
        actor: Actor,
        dataset_id: int,
        stored: list[tuple[Any, Any]],
        captions: list[str],
        notices: Any,
    ) -> AddImagesResult:
        """The rows of stored upload images, in one transaction."""
        with self._sessions.begin() as session:
            require_admin(session, actor)
            dataset = self._find(session, dataset_id)
            present = {i.sha256 for i in dataset.images}
            added = 0
            for (img, file), caption in zip(stored, captions, strict=True):
                if img.sha256 in present:  # added by someone else meanwhile
                    continue
                dataset.images.append(
                    DatasetImage(
                        file_path=self._rel(file.path),
                        sha256=img.sha256,
                        original_name=img.name[:255],
                        width=img.width,
                        height=img.height,
                        caption=caption,
                    )
                )
                present.add(img.sha256)
                added += 1
            session.flush()
            record(
                session, actor, "dataset.images_added", None, dataset=dataset_id, added=added,
                dropped=len(notices),
            )  # fmt: skip
            return AddImagesResult(self._view(session, dataset), added, notices)

    def set_caption(self, actor: Actor, image_id: int, caption: str) -> DatasetImageView:
        """Edit one image's caption."""
        text = _caption(caption)
        with self._sessions.begin() as session:
            require_admin(session, actor)
            image = session.get(DatasetImage, image_id)
            if image is None:
                raise NotFoundError(f"dataset image {image_id} not found")
            image.caption = text
            return self._image_view(image)

    def set_captions(self, actor: Actor, dataset_id: int, captions: Mapping[int, str]) -> DatasetView:
        """Edit several captions of one dataset at once (the caption grid's save)."""
        texts = {int(k): _caption(v) for k, v in captions.items()}
        with self._sessions.begin() as session:
            require_admin(session, actor)
            dataset = self._find(session, dataset_id)
            by_id = {i.id: i for i in dataset.images}
            unknown = sorted(set(texts) - set(by_id))
            if unknown:
                raise NotFoundError(f"image(s) {unknown} are not in dataset {dataset_id}")
            for image_id, text in texts.items():
                by_id[image_id].caption = text
            return self._view(session, dataset)

    def caption_all(
        self,
        actor: Actor,
        dataset_id: int,
        *,
        mode: str = "template",
        template: str = "{trigger}, {caption}",
        trigger: str | None = None,
        adapter: str | None = None,
        only_empty: bool = False,
    ) -> DatasetView:
        """Caption every image from its file name (``mode="filename"``) or a template with ``{trigger}``,
        ``{filename}`` and ``{caption}``; the trigger word defaults to the adapter's first one."""
        if mode not in ("template", "filename"):
            raise ValidationError("mode", "must be 'template' or 'filename'")
        with self._sessions.begin() as session:
            require_admin(session, actor)
            dataset = self._find(session, dataset_id)
            word = (trigger or "").strip() or self._trigger_of(session, dataset.brand_id, adapter)
            if mode == "template" and "{trigger}" in template and not word:
                raise ValidationError(
                    "trigger", "the template uses {trigger}: give a trigger word or adapter"
                )
            for image in dataset.images:
                if only_empty and image.caption.strip():
                    continue
                if mode == "filename":
                    text = checks.caption_from_filename(image.original_name or "")
                else:
                    text = checks.apply_template(
                        template, trigger=word, filename=image.original_name or "", caption=image.caption
                    )
                image.caption = _caption(text)
            record(session, actor, "dataset.captioned", None, dataset=dataset_id, mode=mode)
            return self._view(session, dataset)

    def remove_image(self, actor: Actor, image_id: int) -> DatasetView:
        """Take an image out of its dataset (the stored file stays: other datasets may share it)."""
        with self._sessions.begin() as session:
            require_admin(session, actor)
            image = session.get(DatasetImage, image_id)
            if image is None:
                raise NotFoundError(f"dataset image {image_id} not found")
            dataset = image.dataset
            dataset.images.remove(image)
            session.flush()
            return self._view(session, dataset)

    # ------------------------------------------------------------------------------------- internals

    @staticmethod
    def _find(session: Session, dataset_id: int) -> Dataset:
        dataset = session.get(Dataset, dataset_id)
        if dataset is None:
            raise NotFoundError(f"dataset {dataset_id} not found")
        return dataset

    def _model_of(self, brand: Brand | None) -> str:
        """The base model the brand's LoRAs train on."""
        if brand is None:
            return self._settings.base_model
        return brand_models.effective_model(brand, self._settings)

    @staticmethod
    def _sizes_of(model: str) -> tuple[int, int, str]:
        """(the model's native side, its size multiple, "") or (0, 0, why they cannot be read)."""
        try:
            path = resolve_model(model).path
            return native_resolution(path), size_multiple(path), ""
        except StudioError as exc:
            return 0, 0, str(exc)

    @staticmethod
    def _trigger_of(session: Session, brand_id: int, adapter: str | None) -> str:
        if not adapter:
            return ""
        row = session.scalar(
            select(LoraAdapter).where(LoraAdapter.brand_id == brand_id, LoraAdapter.name == adapter)
        )
        if row is None:
            return ""
        return (row.trigger_words or [""])[0]

    def _rel(self, path: Path) -> str:
        """Paths are stored relative to STUDIO_HOME (portable across machines sharing storage)."""
        return stored_path(self._settings.home, path)

    def _abs(self, stored: str) -> Path:
        return home_path(self._settings.home, stored)

    def _image_view(self, image: DatasetImage) -> DatasetImageView:
        return DatasetImageView(
            id=image.id,
            file_path=self._abs(image.file_path),
            sha256=image.sha256,
            original_name=image.original_name,
            width=image.width,
            height=image.height,
            caption=image.caption,
        )

    def _view(self, session: Session, dataset: Dataset) -> DatasetView:
        brand = session.get(Brand, dataset.brand_id)
        return DatasetView(
            id=dataset.id,
            brand_slug=brand.slug if brand else "",
            name=dataset.name,
            created_at=dataset.created_at,
            images=tuple(self._image_view(i) for i in dataset.images),
        )
