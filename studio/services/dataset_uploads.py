"""Storing a dataset upload's images so that a refused upload leaves no file behind.

The images of an upload are copied into the content store before their rows are written (files first, rows
after). When the rows are refused (a bad caption, the dataset gone, a database error), the files this upload
brought are removed again, unless a row names them by then (the same image uploaded elsewhere meanwhile).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from studio.db.training_models import DatasetImage
from studio.storage import ContentStore, StoredFile, stored_path


def store_images(
    store: ContentStore, images: Sequence[Any]
) -> tuple[list[tuple[Any, StoredFile]], list[Path]]:
    """Put each checked image (``path``, ``suffix``, ``sha256``) into ``store``; returns the (image, stored
    file) pairs and the files that were not in the store before. On a failure the new files are removed."""
    stored: list[tuple[Any, StoredFile]] = []
    new_files: list[Path] = []
    try:
        for image in images:
            existed = store.exists(image.sha256, image.suffix)
            file = store.put_file(image.path, image.suffix, sha256=image.sha256)
            stored.append((image, file))
            if not existed:
                new_files.append(file.path)
    except BaseException:
        for path in new_files:
            path.unlink(missing_ok=True)
        raise
    return stored, new_files


def remove_unnamed(sessions: sessionmaker[Session], home: Path, files: Sequence[Path]) -> None:
    """Remove those of ``files`` that no dataset image row names (after a refused upload)."""
    if not files:
        return
    by_stored = {stored_path(home, path): path for path in files}
    try:
        with sessions() as session:
            named = set(
                session.scalars(select(DatasetImage.file_path).where(DatasetImage.file_path.in_(by_stored)))
            )
    except Exception:  # noqa: BLE001 - the database is the problem: keep the files, doctor reports them
        return
    for stored, path in by_stored.items():
        if stored not in named:
            path.unlink(missing_ok=True)
