"""Validate image files before storing them (decompression bombs are errors, not warnings)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

from studio.errors import ValidationError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
MAX_SIDE = 4096


@dataclass(frozen=True)
class ImageInfo:
    """Size and format of a valid image file."""

    path: Path
    width: int
    height: int
    format: str


def validate_image(path: Path, label: str | None = None) -> ImageInfo:
    """Open and verify an image; raise ValidationError naming it if it is not a usable image."""
    from PIL import Image

    path = Path(path)
    name = label or str(path)
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValidationError(name, f"image must be one of {', '.join(IMAGE_SUFFIXES)}")
    if not path.is_file():
        raise ValidationError(name, "file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height, fmt = img.width, img.height, img.format or ""
                img.verify()
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ValidationError(name, "image is too large (decompression bomb guard)") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for bad files
        raise ValidationError(name, f"not a valid image ({exc.__class__.__name__})") from None
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ValidationError(name, f"image is {width}x{height}; at most {MAX_SIDE} pixels a side")
    return ImageInfo(path=path, width=width, height=height, format=fmt)
