"""Checks for training images before they are stored (no torch, no database).

Only real PNG, JPEG and WebP files are accepted (the bytes decide, not the file name); decompression bombs
are refused (Pillow's warning is an error); truncated files are refused (every pixel is decoded); sides must
lie within limits. Zip uploads are read member by member: any name that would land outside the folder
(zip-slip), a link, or too many/too large members refuse the whole zip before anything is extracted.
Captions may come from a ``.txt`` file of the same name inside the zip (the kohya convention).
"""

from __future__ import annotations

import hashlib
import re
import stat
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from studio.errors import ValidationError

IMAGE_FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}
MIN_SIDE = 16
MAX_SIDE = 4096
MAX_ZIP_MEMBERS = 5000
MAX_ZIP_TOTAL_BYTES = 2 * 1024**3
_CAPTION_BYTES = 4096


@dataclass(frozen=True)
class CheckedImage:
    """A training image that passed every check."""

    path: Path
    name: str  # the name the admin knows it by (upload or zip member name)
    sha256: str
    width: int
    height: int
    format: str
    caption: str = ""

    @property
    def suffix(self) -> str:
        return IMAGE_FORMATS[self.format]


@dataclass(frozen=True)
class PreparedUpload:
    """Images ready to store, and notices for what was dropped (exact duplicates)."""

    images: tuple[CheckedImage, ...]
    notices: tuple[str, ...] = ()


def _sniff(head: bytes) -> str | None:
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def check_image(path: Path, name: str, *, max_bytes: int, max_side: int = MAX_SIDE) -> CheckedImage:
    """Check one image file; raise ValidationError naming ``name`` if it is not a usable training image."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise ValidationError(name, "file not found")
    size = path.stat().st_size
    if size == 0:
        raise ValidationError(name, "file is empty")
    if size > max_bytes:
        raise ValidationError(name, f"file is larger than {max_bytes // (1024 * 1024)} MB")
    with open(path, "rb") as fh:
        head = fh.read(16)
    fmt = _sniff(head)
    if fmt is None:
        raise ValidationError(name, "not an image: only PNG, JPEG and WebP files are accepted")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if img.format != fmt:
                    raise ValidationError(name, f"the file says {fmt} but decodes as {img.format}")
                if max(width, height) > max_side:
                    raise ValidationError(name, f"image is {width}x{height}; at most {max_side} px a side")
                img.load()  # decode every pixel: truncated files fail here
    except ValidationError:
        raise
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise ValidationError(name, "image is too large (decompression bomb guard)") from None
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for damaged files
        detail = "truncated" if "truncated" in str(exc).lower() else exc.__class__.__name__
        raise ValidationError(name, f"damaged image file ({detail})") from None
    if min(width, height) < MIN_SIDE:
        raise ValidationError(name, f"image is {width}x{height}; at least {MIN_SIDE} pixels a side")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return CheckedImage(path=path, name=name, sha256=digest, width=width, height=height, format=fmt)


def _safe_member(info: zipfile.ZipInfo, zip_name: str) -> PurePosixPath | None:
    """The member's relative path, None for folders/metadata; zip-slip and links raise."""
    raw = info.filename.replace("\\", "/")
    mode = info.external_attr >> 16
    if mode and stat.S_ISLNK(mode):
        raise ValidationError(zip_name, f"member {info.filename!r} is a link; links are refused")
    parts = PurePosixPath(raw).parts
    if (
        raw.startswith("/")
        or re.match(r"^[A-Za-z]:", raw)
        or ".." in parts
        or "\x00" in raw
        or not parts
    ):
        raise ValidationError(zip_name, f"member {info.filename!r} points outside the folder (zip-slip)")
    if info.is_dir() or parts[0] == "__MACOSX" or parts[-1].startswith("."):
        return None
    return PurePosixPath(*parts)


def extract_zip(zip_path: Path, dest: Path, *, zip_name: str, max_bytes: int) -> list[tuple[Path, str]]:
    """Extract a zip's image and caption members into ``dest`` (flat, numbered names).

    Every member name is checked first; a bad one refuses the whole zip and nothing is written.
    Returns ``(extracted file, member name)`` pairs in archive order.
    """
    try:
        archive = zipfile.ZipFile(zip_path)
    except (zipfile.BadZipFile, OSError):
        raise ValidationError(zip_name, "not a valid zip file") from None
    with archive:
        members: list[tuple[zipfile.ZipInfo, PurePosixPath]] = []
        total = 0
        for info in archive.infolist():
            rel = _safe_member(info, zip_name)
            if rel is None:
                continue
            members.append((info, rel))
            total += info.file_size
            if info.file_size > max_bytes:
                raise ValidationError(zip_name, f"member {info.filename!r} is larger than the upload limit")
        if len(members) > MAX_ZIP_MEMBERS:
            raise ValidationError(zip_name, f"holds {len(members)} files; at most {MAX_ZIP_MEMBERS}")
        if total > MAX_ZIP_TOTAL_BYTES:
            raise ValidationError(zip_name, "unpacks to more than 2 GB")
        dest.mkdir(parents=True, exist_ok=True)
        out: list[tuple[Path, str]] = []
        for number, (info, rel) in enumerate(members):
            target = dest / f"{number:05d}{Path(rel.name).suffix.lower()[:10]}"
            with archive.open(info) as src, open(target, "wb") as fh:
                remaining = max_bytes + 1
                while chunk := src.read(1024 * 1024):
                    remaining -= len(chunk)
                    if remaining < 0:
                        raise ValidationError(zip_name, f"member {info.filename!r} is larger than declared")
                    fh.write(chunk)
            out.append((target, rel.as_posix()))
        return out


def prepare_uploads(
    files: Sequence[tuple[Path, str]],
    work_dir: Path,
    *,
    max_bytes: int,
    known_hashes: Iterable[str] = (),
) -> PreparedUpload:
    """Check uploaded files (zips are expanded into ``work_dir``); any bad file refuses the whole upload.

    Exact duplicates (same bytes as an earlier file of the upload or an image already in the dataset) are
    dropped with a notice. ``.txt`` files inside a zip become the caption of the image with the same stem.
    """
    if not files:
        raise ValidationError("images", "no files were uploaded")
    expanded: list[tuple[Path, str]] = []
    for index, (path, name) in enumerate(files):
        if str(name).lower().endswith(".zip"):
            expanded += extract_zip(Path(path), work_dir / f"zip{index}", zip_name=name, max_bytes=max_bytes)
        else:
            expanded.append((Path(path), name))
    captions: dict[str, str] = {}
    candidates: list[tuple[Path, str]] = []
    for path, name in expanded:
        if name.lower().endswith(".txt"):
            text = path.read_bytes()[:_CAPTION_BYTES].decode("utf-8", errors="replace")
            captions[str(PurePosixPath(name).with_suffix(""))] = " ".join(text.split())
        else:
            candidates.append((path, name))
    seen = set(known_hashes)
    images: list[CheckedImage] = []
    notices: list[str] = []
    for path, name in candidates:
        checked = check_image(path, name, max_bytes=max_bytes)
        if checked.sha256 in seen:
            notices.append(f"{name}: exact duplicate of an image already in the dataset; dropped")
            continue
        seen.add(checked.sha256)
        caption = captions.get(str(PurePosixPath(name).with_suffix("")), "")
        images.append(
            CheckedImage(
                path=checked.path,
                name=checked.name,
                sha256=checked.sha256,
                width=checked.width,
                height=checked.height,
                format=checked.format,
                caption=caption,
            )
        )
    if not images and not notices:
        raise ValidationError("images", "the upload holds no images")
    return PreparedUpload(images=tuple(images), notices=tuple(notices))


def caption_from_filename(name: str) -> str:
    """``photos/red_circle-01.png`` → ``red circle``: words of the file stem, numbers dropped."""
    stem = PurePosixPath(name.replace("\\", "/")).stem
    words = [w for w in re.split(r"[\s_\-.]+", stem) if w and not w.isdigit()]
    return " ".join(words).lower()


def apply_template(template: str, *, trigger: str, filename: str, caption: str) -> str:
    """Fill ``{trigger}``, ``{filename}`` (its words) and ``{caption}`` (the current one) in a template."""
    if not any(key in template for key in ("{trigger}", "{filename}", "{caption}")):
        raise ValidationError("template", "use at least one of {trigger}, {filename}, {caption}")
    text = (
        template.replace("{trigger}", trigger)
        .replace("{filename}", caption_from_filename(filename))
        .replace("{caption}", caption)
    )
    return ", ".join(part.strip() for part in text.split(",") if part.strip())
