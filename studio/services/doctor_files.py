"""What ``studio doctor`` knows about the data folder: every kind of file the studio writes, and the rows that
name them.

- ``images/``: generated images (``images.file_path``); ``images/training/``: training samples
  (``job_checkpoints.sample_paths``) and quality-gate images (``job_checkpoints.quality["images"]``).
- ``datasets/``: training images of datasets (``dataset_images.file_path``).
- ``loras/``: LoRA files, uploaded, synced or published (``lora_versions.file_path``).
- ``training/``: checkpoints, LoRA and training-state files (``job_checkpoints.file_path``, ``.state_path``).
- ``templates/``: layout template images and control maps (``control_templates.source_image_path``,
  ``.control_image_path``); an unnamed one is kept: a recipe may still name a replaced map by its hash.
- ``exports/`` (export zips, download links and converted LoRA downloads, for users), ``backups/``, ``cache/``
  and ``tmp/``: kept.

Unnamed files in the first four are orphans, what a crash between writing a file and committing its row
leaves; ``--fix`` removes those older than the grace period. A file that a row names (or that lies in a folder
a row names, such as the folders of a job that may still run or resume) is never an orphan, wherever it lies.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from studio.config import Settings
from studio.db.generation_models import Image
from studio.db.models import ControlTemplate, LoraVersion
from studio.db.training_models import DatasetImage, Job, JobCheckpoint
from studio.storage import home_path
from studio.training.worker import job_dirs

#: job states whose folders a worker may still write to or resume from (the baseline images, a checkpoint
#: whose row is not committed yet): nothing in them is an orphan
RESUMABLE = ("queued", "running", "interrupted", "failed", "cancelled")


@dataclass(frozen=True)
class FileArea:
    """A folder of the data folder and what the studio keeps there; ``orphans``: unnamed files there are
    orphans (``--fix`` may remove them), else they are only counted."""

    folder: str
    what: str
    orphans: bool


AREAS: tuple[FileArea, ...] = (
    FileArea("images", "generated images, training samples and quality-gate images", True),
    FileArea("datasets", "training images of datasets", True),
    FileArea("loras", "LoRA files", True),
    FileArea("training", "training checkpoints (LoRA and training-state files)", True),
    FileArea("templates", "layout template images and control maps", False),
    FileArea("exports", "export zips and download links", False),
    FileArea("backups", "database backups", False),
    FileArea("cache", "caches (uploads, training latents)", False),
    FileArea("tmp", "upload work folders", False),
)


@dataclass(frozen=True)
class NamedFile:
    """A file a row names: ``what`` says which row (``image #3``, ``job 2 step 4 sample``)."""

    what: str
    path: Path
    must_exist: bool = True  # False: a folder kept for a job that may still write it


def _paths(value: Any) -> Iterator[str]:
    """Every string in a nested JSON value (lists and dicts of stored paths)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _paths(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _paths(item)


def named_files(session: Session, settings: Settings) -> list[NamedFile]:
    """Every file a row names (absolute paths): images, samples, quality images, checkpoints, dataset images,
    LoRA files and template images."""
    home = settings.home
    named: list[NamedFile] = [
        NamedFile(f"image #{image_id}", settings.images_dir / path)
        for image_id, path in session.execute(select(Image.id, Image.file_path))
    ]
    named += [
        NamedFile(f"dataset image #{image_id}", home_path(home, path))
        for image_id, path in session.execute(select(DatasetImage.id, DatasetImage.file_path))
    ]
    named += [
        NamedFile(f"LoRA version #{version_id}", home_path(home, path))
        for version_id, path in session.execute(select(LoraVersion.id, LoraVersion.file_path))
    ]
    for template_id, source, control in session.execute(
        select(ControlTemplate.id, ControlTemplate.source_image_path, ControlTemplate.control_image_path)
    ):
        named += [NamedFile(f"template #{template_id}", home_path(home, p)) for p in (source, control) if p]
    rows = session.execute(
        select(
            JobCheckpoint.job_id,
            JobCheckpoint.step,
            JobCheckpoint.file_path,
            JobCheckpoint.state_path,
            JobCheckpoint.sample_paths,
            JobCheckpoint.quality,
        )
    )
    unfinished = session.execute(select(Job.id).where(Job.status.in_(RESUMABLE)))
    for (job_id,) in unfinished:  # a job that may still write (or resume from) its folders: all of them
        folders = job_dirs(settings, job_id)[:2]
        named += [NamedFile(f"job {job_id} (may resume)", f, must_exist=False) for f in folders]
    for job_id, step, lora, state, samples, quality in rows:
        what = f"job {job_id} step {step}"
        named.append(NamedFile(f"{what} checkpoint", home_path(home, lora)))
        if state:
            named.append(NamedFile(f"{what} training state", home_path(home, state)))
        named += [NamedFile(f"{what} sample", home_path(home, p)) for p in _paths(samples or [])]
        images = (quality or {}).get("images") if isinstance(quality, dict) else None
        named += [NamedFile(f"{what} quality image", home_path(home, p)) for p in _paths(images or {})]
    return named


def is_temp_file(path: Path) -> bool:
    """A temporary file of :func:`studio.storage.atomic.atomic_writer` (``.<name>.<random>.tmp``)."""
    return path.name.startswith(".") and path.name.endswith(".tmp")


def unnamed_files(home: Path, named: Iterable[Path], *, orphans_only: bool) -> list[Path]:
    """Files under the areas of ``home`` that no row names (temporary files left out): those of the orphan
    areas when ``orphans_only``, else those of the areas whose unnamed files are kept."""
    exact = {_key(p) for p in named}  # a named folder (a training state) names what it holds
    found: list[Path] = []
    for area in AREAS:
        if area.orphans != orphans_only:
            continue
        root = home / area.folder
        if not root.is_dir():
            continue
        for path in root.rglob("*"):
            if not path.is_file() or path.is_symlink() or is_temp_file(path):
                continue
            resolved = path.resolve()
            if not any(p.as_posix() in exact for p in (resolved, *resolved.parents)):
                found.append(path)
    return sorted(found)


def _key(path: Path) -> str:
    """A path compared by where it really is (``..`` and links resolved)."""
    return Path(path).resolve().as_posix()
