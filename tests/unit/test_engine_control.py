"""Control maps: offline preprocessors, missing weights, safe image loading."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from studio.engine.control import image_sha256, load_image, make_control_map
from studio.errors import ModelError, ValidationError


def _layout() -> Image.Image:
    image = Image.new("RGB", (120, 80), "white")
    draw = ImageDraw.Draw(image)
    draw.ellipse((20, 10, 70, 60), fill="red", outline="black", width=3)
    draw.rectangle((80, 20, 110, 70), fill="blue")
    return image


@pytest.mark.parametrize("name", ["canny", "shuffle", "lineart_standard", "content shuffle", "none"])
def test_offline_preprocessors_make_maps_of_the_output_size(name: str) -> None:
    control = make_control_map(_layout(), name, 64, 48)
    assert control.size == (64, 48)
    assert control.mode == "RGB"


def test_canny_finds_edges_and_shuffle_is_seeded() -> None:
    edges = make_control_map(_layout(), "canny", 64, 64)
    assert 0 < sum(1 for p in edges.convert("L").getdata() if p > 0) < 64 * 64 / 2
    first = make_control_map(_layout(), "shuffle", 64, 64, seed=3)
    assert image_sha256(first) == image_sha256(make_control_map(_layout(), "shuffle", 64, 64, seed=3))


WEIGHTED = [("hed", "ControlNetHED.pth"), ("openpose", "body_pose_model.pth")]


@pytest.mark.parametrize(("name", "weights"), WEIGHTED)
def test_weighted_preprocessors_name_the_missing_weights(name: str, weights: str) -> None:
    with pytest.raises(ModelError) as info:
        make_control_map(_layout(), name, 64, 64)
    assert "lllyasviel/Annotators" in str(info.value)
    assert weights in str(info.value)


def test_unknown_preprocessor() -> None:
    with pytest.raises(ValidationError, match="unknown preprocessor 'sketchy'"):
        make_control_map(_layout(), "sketchy", 64, 64)


def test_not_an_image(tmp_path: Path) -> None:
    fake = tmp_path / "layout.png"
    fake.write_text("hello")
    with pytest.raises(ValidationError) as info:
        load_image(fake, "template image")
    assert info.value.field == "template image"
    assert "layout.png" in str(info.value)
    with pytest.raises(ValidationError, match="upload: not a readable image"):
        load_image(b"\x00\x01", "image")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_header(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` × ``height`` pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"")) + _chunk(b"IEND", b"")


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(20000, 20000))
    with pytest.raises(ValidationError, match="bomb.png: image is too large"):
        load_image(bomb, "image")


def test_bomb_warning_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (40, 40)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 1600 px: a warning in Pillow, an error here
    with pytest.raises(ValidationError, match="big.png: image is too large"):
        load_image(path, "image")
    with pytest.raises(ValidationError, match="too large"):
        load_image(Image.new("RGB", (40, 40)), "image")
