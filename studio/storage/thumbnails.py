"""Small PNG thumbnails of stored images, made once and kept under ``<home>/cache/thumbnails``.

A thumbnail is named by its source's content hash and its size (``<sha[:2]>/<sha>-<size>.png``), so the same
picture is scaled once however many datasets hold it, and a changed file gets a new one. It is written
atomically (:func:`studio.storage.atomic.atomic_writer`): a reader sees a whole PNG or none, and two requests
making the same thumbnail at once both end with the same file. The cache may be deleted at any time.
"""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image, ImageOps

from studio.storage.atomic import atomic_writer

#: the longest side of a thumbnail, in pixels, unless asked otherwise
THUMBNAIL_SIZE = 128
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def thumbnail_path(cache_dir: Path, sha256: str, size: int = THUMBNAIL_SIZE) -> Path:
    """Where the ``size`` thumbnail of the image whose content hash is ``sha256`` is kept."""
    if not _SHA256.match(sha256):
        raise ValueError(f"not a sha256 hex digest: {sha256!r}")
    return cache_dir / sha256[:2] / f"{sha256}-{size}.png"


def thumbnail(source: Path, cache_dir: Path, sha256: str, size: int = THUMBNAIL_SIZE) -> Path:
    """The thumbnail of ``source`` (whose content hash is ``sha256``), at most ``size`` pixels on its longest
    side, as a PNG; made and stored on first use (a picture already that small is re-encoded as is)."""
    target = thumbnail_path(cache_dir, sha256, size)
    if target.is_file():
        return target
    with Image.open(source) as opened:
        picture = ImageOps.exif_transpose(opened)
        picture = picture.convert("RGBA" if picture.mode in ("RGBA", "LA", "P") else "RGB")
        picture.thumbnail((size, size), Image.Resampling.LANCZOS)
    with atomic_writer(target) as out:
        picture.save(out, format="PNG", optimize=True)
    return target
