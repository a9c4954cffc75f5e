"""Frozen views the dataset and training services return (never ORM objects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

#: job states in which each control applies (the queue's state machine: studio.training.queue)
CANCELLABLE = ("queued", "running")
RESUMABLE = ("interrupted", "failed", "cancelled")
PUBLISHABLE = ("succeeded", "cancelled", "interrupted")


@dataclass(frozen=True)
class DatasetImageView:
    """One training image and its caption."""

    id: int
    file_path: Path
    sha256: str
    original_name: str
    width: int
    height: int
    caption: str


@dataclass(frozen=True)
class DatasetView:
    """A dataset of a brand with its images."""

    id: int
    brand_slug: str
    name: str
    created_at: datetime
    images: tuple[DatasetImageView, ...] = ()

    @property
    def image_count(self) -> int:
        return len(self.images)


@dataclass(frozen=True)
class AddImagesResult:
    """What an upload added, and notices about what it dropped (exact duplicates)."""

    dataset: DatasetView
    added: int
    notices: tuple[str, ...] = ()


@dataclass(frozen=True)
class BucketView:
    """One aspect-ratio bucket of a dataset's plan: its size, its images and how much of them is cropped."""

    width: int
    height: int
    count: int
    label: str  # e.g. "landscape 3:2"
    max_crop_share: float  # the largest share of a resized image's pixels cut off, 0..1
    images: tuple[str, ...]  # the images' names, dataset order
    line: str  # e.g. "1216×832: 3 images (landscape 3:2), crop up to 4%"


@dataclass(frozen=True)
class DatasetCheck:
    """The dataset check before training: counts, sizes, caption problems, the bucket plan and advice.

    ``model`` is the base model the check read its ``native`` side from (0 when it could not be read);
    ``buckets`` is the aspect-ratio plan, most images first.
    """

    dataset_id: int
    count: int
    trigger: str
    sizes: dict[str, int]
    min_side: int
    max_side: int
    missing_captions: tuple[str, ...]
    missing_trigger: tuple[str, ...]
    small_images: tuple[str, ...]
    duplicates: int
    advice: tuple[str, ...]
    ready: bool
    model: str = ""
    native: int = 0
    buckets: tuple[BucketView, ...] = ()


@dataclass(frozen=True)
class CheckpointView:
    """A checkpoint of a job: its LoRA file, sample images and, once published, the version it became."""

    step: int
    file_path: Path
    sha256: str
    sample_paths: tuple[Path, ...]
    loss: float | None
    created_at: datetime
    published_version_id: int | None = None
    published_version_number: int | None = None  # the version's number within its adapter (1, 2, …)
    #: the quality gate's scores (studio.training.quality): palette, adherence (None: n/a), trigger; None:
    #: not scored (a job queued before the gate)
    quality: dict[str, Any] | None = None
    #: the quality gate's images, by set: lora, lora_plain, base, base_plain (absolute paths)
    quality_images: dict[str, tuple[Path, ...]] = field(default_factory=dict)

    @property
    def palette_drop(self) -> tuple[float, float] | None:
        """(without LoRA, with LoRA) palette scores when this checkpoint lowers the score, else None."""
        from studio.training.quality import palette_drop

        return palette_drop(self.quality)


@dataclass(frozen=True)
class JobView:
    """A job of the queue with its progress; ``eta_seconds`` is None until a rate is known."""

    id: int
    kind: str
    status: str
    priority: int
    brand_slug: str | None
    adapter_name: str
    dataset_id: int | None
    preset: str
    step: int
    total_steps: int
    loss: float | None
    message: str
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker_id: str | None
    cancel_requested: bool
    resume_from: int | None
    eta_seconds: float | None
    config: dict[str, Any] = field(default_factory=dict)
    loss_history: tuple[tuple[int, float], ...] = ()
    checkpoints: tuple[CheckpointView, ...] = ()
    #: the best checkpoint by the quality gate's rule (studio.training.quality.best_step); None: none
    best_step: int | None = None

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0

    @property
    def can_cancel(self) -> bool:
        """Cancel applies to queued and running jobs only."""
        return self.status in CANCELLABLE and not self.cancel_requested

    @property
    def can_resume(self) -> bool:
        """Resume applies to interrupted, failed and cancelled jobs."""
        return self.status in RESUMABLE

    @property
    def can_publish(self) -> bool:
        """Publish needs a finished (or stopped) job with at least one checkpoint."""
        return self.status in PUBLISHABLE and bool(self.checkpoints)


@dataclass(frozen=True)
class PublishResult:
    """A published checkpoint: the adapter (its active version is the new one)."""

    job_id: int
    step: int
    brand_slug: str
    adapter_name: str
    version_id: int
    sha256: str
    version_number: int | None = None  # the version's number within its adapter (1 for its first)
