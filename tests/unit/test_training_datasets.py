"""Training-image checks, zip handling, captions and the trainer config: real files, no torch."""

from __future__ import annotations

import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image

from studio.errors import ValidationError
from studio.training import datasets as checks
from studio.training.config import TrainConfig, build_config, fit_to_memory

MB = 1024 * 1024


def png(path: Path, colour: tuple[int, int, int] = (0, 128, 128), size: int = 32, fmt: str = "PNG") -> Path:
    Image.new("RGB", (size, size), colour).save(path, format=fmt)
    return path


def bomb_png(path: Path, side: int = 20000) -> Path:
    """A tiny PNG whose header claims side×side pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    )
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("fmt,suffix", [("PNG", ".png"), ("JPEG", ".jpg"), ("WEBP", ".webp")])
def test_real_images_pass(tmp_path: Path, fmt: str, suffix: str) -> None:
    path = png(tmp_path / f"a{suffix}", fmt=fmt)
    checked = checks.check_image(path, f"a{suffix}", max_bytes=MB)
    assert (checked.width, checked.height, checked.format) == (32, 32, fmt)
    assert len(checked.sha256) == 64


def test_non_image_is_refused_whatever_its_name(tmp_path: Path) -> None:
    fake = tmp_path / "photo.png"
    fake.write_text("#!/bin/sh\necho not an image\n")
    with pytest.raises(ValidationError, match=r"photo\.png: not an image"):
        checks.check_image(fake, "photo.png", max_bytes=MB)


def test_other_image_formats_are_refused(tmp_path: Path) -> None:
    gif = tmp_path / "a.gif"
    Image.new("RGB", (32, 32)).save(gif)
    with pytest.raises(ValidationError, match="only PNG, JPEG and WebP"):
        checks.check_image(gif, "a.gif", max_bytes=MB)


def test_truncated_png_is_refused(tmp_path: Path) -> None:
    whole = tmp_path / "whole.png"
    Image.effect_noise((64, 64), 50).convert("RGB").save(whole)
    cut = tmp_path / "cut.png"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ValidationError, match="cut.png: damaged image file"):
        checks.check_image(cut, "cut.png", max_bytes=MB)


def test_decompression_bomb_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="decompression bomb"):
        checks.check_image(bomb_png(tmp_path / "bomb.png"), "bomb.png", max_bytes=MB)
    # a bomb just over Pillow's warning limit (not its error limit) is refused too
    with pytest.raises(ValidationError, match="decompression bomb"):
        checks.check_image(bomb_png(tmp_path / "warn.png", side=9500), "warn.png", max_bytes=MB)


def test_size_limits(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="at least 16"):
        checks.check_image(png(tmp_path / "tiny.png", size=8), "tiny.png", max_bytes=MB)
    with pytest.raises(ValidationError, match="at most 64"):
        checks.check_image(png(tmp_path / "big.png", size=80), "big.png", max_bytes=MB, max_side=64)
    with pytest.raises(ValidationError, match="larger than"):
        checks.check_image(png(tmp_path / "heavy.png"), "heavy.png", max_bytes=10)


def test_zip_slip_refuses_the_whole_zip_before_extracting(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(png(tmp_path / "ok.png"), "ok.png")
        zf.writestr("../../escape.png", png(tmp_path / "x.png").read_bytes())
    dest = tmp_path / "out"
    with pytest.raises(ValidationError, match="zip-slip"):
        checks.extract_zip(archive, dest, zip_name="evil.zip", max_bytes=MB)
    assert not dest.exists() or not any(dest.rglob("*"))
    assert not (tmp_path.parent / "escape.png").exists()
    absolute = tmp_path / "abs.zip"
    with zipfile.ZipFile(absolute, "w") as zf:
        zf.writestr("/etc/evil.png", b"x")
    with pytest.raises(ValidationError, match="zip-slip"):
        checks.extract_zip(absolute, dest, zip_name="abs.zip", max_bytes=MB)


def test_zip_with_captions_and_duplicates(tmp_path: Path) -> None:
    archive = tmp_path / "set.zip"
    red = png(tmp_path / "r.png", (220, 40, 40)).read_bytes()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("set/red_circle_01.png", red)
        zf.writestr("set/red_circle_01.txt", "a red circle,   emberstyle\n")
        zf.writestr("set/copy.png", red)
        zf.writestr("set/blue.png", png(tmp_path / "b.png", (40, 80, 230)).read_bytes())
        zf.writestr("__MACOSX/._blue.png", b"junk")
    prepared = checks.prepare_uploads([(archive, "set.zip")], tmp_path / "work", max_bytes=MB)
    assert [i.name for i in prepared.images] == ["set/red_circle_01.png", "set/blue.png"]
    assert prepared.images[0].caption == "a red circle, emberstyle"
    assert len(prepared.notices) == 1 and "set/copy.png" in prepared.notices[0]


def test_one_bad_file_refuses_the_upload(tmp_path: Path) -> None:
    bad = tmp_path / "notes.png"
    bad.write_bytes(b"hello")
    with pytest.raises(ValidationError, match="notes.png"):
        checks.prepare_uploads(
            [(png(tmp_path / "a.png"), "a.png"), (bad, "notes.png")], tmp_path / "w", max_bytes=MB
        )
    with pytest.raises(ValidationError, match="no files"):
        checks.prepare_uploads([], tmp_path / "w", max_bytes=MB)


def test_captions_from_file_names_and_templates() -> None:
    assert checks.caption_from_filename("photos/Red_circle-01.png") == "red circle"
    text = checks.apply_template(
        "{trigger}, {filename}", trigger="lagoonstyle", filename="a_b.png", caption=""
    )
    assert text == "lagoonstyle, a b"
    assert checks.apply_template("{caption}, {trigger}", trigger="t", filename="", caption="") == "t"
    with pytest.raises(ValidationError, match="template"):
        checks.apply_template("plain words", trigger="t", filename="x", caption="")


def test_config_presets_overrides_and_limits() -> None:
    config = build_config(
        "embedded:toyworld", preset="quick", trigger="acme", overrides={"rank": 8, "steps": None}
    )
    assert (config.rank, config.alpha, config.steps) == (8, 8.0, 100)
    assert TrainConfig.from_dict(config.as_dict()) == config
    for overrides, field in (
        ({"rank": 0}, "rank"),
        ({"rank": 512}, "rank"),
        ({"steps": 0}, "steps"),
        ({"steps": 10**6}, "steps"),
        ({"learning_rate": 5}, "learning_rate"),
        ({"resolution": 100}, "resolution"),
        ({"batch_size": 1.5}, "batch_size"),
    ):
        with pytest.raises(ValidationError) as info:
            build_config("m", overrides=overrides)
        assert info.value.field == field
    with pytest.raises(ValidationError, match="preset"):
        build_config("m", preset="turbo")
    with pytest.raises(ValidationError, match="kind"):
        build_config("m", kind="photo")


def test_fit_to_memory_lowers_the_batch_on_small_gpus() -> None:
    config = build_config("m", preset="default")
    small = fit_to_memory(config, "cuda", 6.0)
    assert small.batch_size == 1 and small.gradient_checkpointing and small.mixed_precision
    assert small.notes
    big = fit_to_memory(config, "cuda", 80.0)
    assert big.batch_size == config.batch_size and not big.gradient_checkpointing
    cpu = fit_to_memory(config, "cpu", None)
    assert cpu.batch_size == config.batch_size and not cpu.mixed_precision


def test_fit_to_memory_sizes_by_model_family() -> None:
    """The same 24 GB card (23.6 GiB, as CUDA reports an RTX 4090): an SD 1.5 job keeps batch 4, SDXL drops
    to 2 with checkpointing, FLUX to 1 with checkpointing and a note to train on an int8 base."""
    config = build_config("m", preset="quality", overrides={"batch_size": 4})
    sd = fit_to_memory(config, "cuda", 23.6, "sd1")
    sdxl = fit_to_memory(config, "cuda", 23.6, "sdxl")
    flux = fit_to_memory(config, "cuda", 23.6, "flux")
    assert (sd.batch_size, sd.gradient_checkpointing) == (4, False)
    assert (sdxl.batch_size, sdxl.gradient_checkpointing) == (2, True)
    assert (flux.batch_size, flux.gradient_checkpointing) == (1, True)
    assert any("quantize_base int8" in note for note in flux.notes)
    roomy = fit_to_memory(config, "cuda", 141.0, "flux")
    assert (roomy.batch_size, roomy.gradient_checkpointing, roomy.notes) == (4, False, ())
