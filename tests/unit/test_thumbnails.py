"""Dataset thumbnails (issue 16, item 4): a small PNG per image content hash, made once, written whole."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PIL import Image

from studio.storage.thumbnails import thumbnail, thumbnail_path


def _picture(path: Path, size: tuple[int, int], mode: str = "RGB") -> str:
    Image.new(mode, size, "teal").save(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_thumbnail_is_a_small_png_made_once(tmp_path: Path) -> None:
    source = tmp_path / "big.png"
    sha = _picture(source, (300, 200), "RGBA")
    cache = tmp_path / "cache"
    made = thumbnail(source, cache, sha)
    assert made == thumbnail_path(cache, sha) == cache / sha[:2] / f"{sha}-128.png"
    with Image.open(made) as small:
        assert (small.format, small.size, small.mode) == ("PNG", (128, 85), "RGBA")
    stamp = made.stat().st_mtime_ns
    source.unlink()  # the second call does not read the source again
    assert thumbnail(source, cache, sha) == made and made.stat().st_mtime_ns == stamp
    assert [p.name for p in made.parent.iterdir()] == [made.name]  # no temporary file left


def test_a_small_picture_keeps_its_size_and_a_bad_hash_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "small.jpg"
    sha = _picture(source, (40, 30))
    with Image.open(thumbnail(source, tmp_path, sha, size=64)) as small:
        assert (small.format, small.size) == ("PNG", (40, 30))
    with pytest.raises(ValueError):
        thumbnail_path(tmp_path, "../../etc/passwd")
