"""Atomic writes, content-addressed storage and the safetensors/image validators."""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import pytest
from helpers import safetensors_bytes

from studio.errors import ValidationError
from studio.storage import ContentStore, atomic_write_bytes, sha256_file, validate_safetensors
from studio.storage.atomic import atomic_writer
from studio.storage.images import validate_image


def test_atomic_write_replaces_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["out.bin"]


def test_atomic_write_failure_keeps_old_content(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_writer(target) as fh:
        fh.write(b"half a fi")
        raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_content_store_is_addressed_by_sha256_and_deduplicates(tmp_path: Path) -> None:
    store = ContentStore(tmp_path / "cas")
    first = store.put_bytes(b"hello", ".bin")
    src = tmp_path / "src.bin"
    src.write_bytes(b"hello")
    second = store.put_file(src, ".bin")
    assert first == second
    assert first.path == tmp_path / "cas" / first.sha256[:2] / f"{first.sha256}.bin"
    assert sha256_file(first.path) == first.sha256
    assert len(list((tmp_path / "cas").rglob("*.bin"))) == 1


def test_valid_safetensors_reports_tensors_and_lora_rank(tmp_path: Path) -> None:
    path = tmp_path / "style.safetensors"
    path.write_bytes(safetensors_bytes(rank=4))
    info = validate_safetensors(path)
    assert info.tensor_count == 2
    assert info.lora_rank == 4
    assert info.metadata == {"format": "pt"}


def test_safetensors_written_by_the_library_is_accepted(tmp_path: Path) -> None:
    numpy = pytest.importorskip("numpy")
    from safetensors.numpy import save_file

    path = tmp_path / "lib.safetensors"
    save_file({"a.lora_down.weight": numpy.zeros((8, 16), dtype=numpy.float16)}, str(path))
    assert validate_safetensors(path).lora_rank == 8


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"w": [1, 2]}))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("empty.safetensors", b"", "0 bytes"),
        ("pickled.safetensors", pickle.dumps({"w": [1.0]}, protocol=4), "pickle"),
        ("zipped.safetensors", _zip_bytes(), "zip"),
        ("truncated.safetensors", safetensors_bytes()[:-10], "truncated"),
        ("cut-header.safetensors", safetensors_bytes()[:40], "truncated"),
        ("short.safetensors", b"\x01\x02", "too short"),
        ("garbage.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!", "not valid JSON"),
        ("huge-header.safetensors", b"\xff" * 8 + b"{}", "header length"),
        ("model.ckpt", safetensors_bytes(), ".safetensors"),
        ("model.bin", pickle.dumps({"w": 1}), ".safetensors"),
    ],
)
def test_bad_weight_files_are_refused_naming_the_file(
    tmp_path: Path, name: str, content: bytes, expected: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValidationError) as err:
        validate_safetensors(path)
    assert name in str(err.value)
    assert expected in str(err.value)


def test_upload_label_is_used_for_name_and_extension(tmp_path: Path) -> None:
    tmp_upload = tmp_path / "upload-1234"
    tmp_upload.write_bytes(safetensors_bytes())
    assert validate_safetensors(tmp_upload, "style.safetensors").tensor_count == 2
    with pytest.raises(ValidationError, match=r"style\.pt"):
        validate_safetensors(tmp_upload, "style.pt")


def test_validate_image_refuses_non_images(tmp_path: Path) -> None:
    path = tmp_path / "layout.png"
    path.write_bytes(b"not a png")
    with pytest.raises(ValidationError, match="layout.png"):
        validate_image(path)


def test_validate_image_refuses_decompression_bombs(tmp_path: Path) -> None:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    path = tmp_path / "bomb.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    with pytest.raises(ValidationError, match="too large"):
        validate_image(path)


def test_atomic_writes_leave_readable_files(tmp_path: Path) -> None:
    from studio.storage.atomic import atomic_write_bytes

    target = atomic_write_bytes(tmp_path / "a.bin", b"x")
    assert target.stat().st_mode & 0o777 == 0o644
