"""Validate a ``.safetensors`` file without loading it: only safetensors are ever loaded, pickles never."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

from studio.errors import ValidationError

MAX_HEADER_BYTES = 100 * 1024 * 1024
_DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
    "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4,
    "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip


@dataclass(frozen=True)
class SafetensorsInfo:
    """What the header of a valid safetensors file says."""

    path: Path
    size: int
    tensor_count: int
    metadata: dict[str, str] = field(default_factory=dict)
    lora_rank: int | None = None
    keys: tuple[str, ...] = ()


def _sniff(head: bytes) -> str | None:
    if head[:1] == b"\x80" and len(head) > 1 and 2 <= head[1] <= 5:
        return "it is a Python pickle (.ckpt/.pt/.bin), which is never loaded; convert it to safetensors"
    if head[:4] == b"PK\x03\x04":
        return "it is a zip archive (torch.save .pt/.bin), which is never loaded; convert it to safetensors"
    return None


def _lora_rank(header: dict[str, dict[str, object]]) -> int | None:
    ranks = set()
    for key, entry in header.items():
        shape = entry.get("shape")
        down = any(t in key for t in ("lora_A", "lora_down", "lora.down"))  # peft, kohya, diffusers names
        if isinstance(shape, list) and len(shape) >= 2 and down:
            ranks.add(int(shape[0]))
    return max(ranks) if ranks else None


def validate_safetensors(path: Path, label: str | None = None) -> SafetensorsInfo:
    """Check that ``path`` is a whole, well-formed safetensors file; raise ValidationError naming it if not.

    ``label`` is the name shown in errors and checked for the ``.safetensors`` extension (e.g. an uploaded
    file's original name, when the upload sits under a temporary name); default the path.
    """
    path = Path(path)
    name = label or str(path)
    if not name.lower().endswith(".safetensors"):
        raise ValidationError(name, "only .safetensors files are accepted")
    if not path.is_file():
        raise ValidationError(name, "file not found")
    size = path.stat().st_size
    if size == 0:
        raise ValidationError(name, "file is empty (0 bytes)")
    with open(path, "rb") as fh:
        head = fh.read(8)
        problem = _sniff(head)
        if problem:
            raise ValidationError(name, f"not a safetensors file: {problem}")
        if len(head) < 8:
            raise ValidationError(name, f"not a safetensors file: only {size} bytes, too short for a header")
        (header_len,) = struct.unpack("<Q", head)
        if header_len == 0 or header_len > MAX_HEADER_BYTES:
            raise ValidationError(name, f"not a safetensors file: invalid header length {header_len}")
        if 8 + header_len > size:
            raise ValidationError(name, "truncated safetensors file: the header runs past the end")
        raw = fh.read(header_len)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ValidationError(name, "not a safetensors file: the header is not valid JSON") from None
    if not isinstance(header, dict):
        raise ValidationError(name, "not a safetensors file: the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise ValidationError(name, "invalid safetensors header: __metadata__ is not an object")
    data_len = size - 8 - header_len
    bad = "invalid safetensors header: tensor"
    end_max = 0
    for key, entry in header.items():
        if not isinstance(entry, dict):
            raise ValidationError(name, f"invalid safetensors header: entry {key!r} is not an object")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in _DTYPE_BYTES:
            raise ValidationError(name, f"{bad} {key!r} has unknown dtype {dtype!r}")
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise ValidationError(name, f"{bad} {key!r} has a bad shape")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise ValidationError(name, f"{bad} {key!r} has bad data_offsets")
        begin, end = offsets
        count = 1
        for d in shape:
            count *= d
        if not 0 <= begin <= end or end - begin != count * _DTYPE_BYTES[dtype]:
            raise ValidationError(name, f"{bad} {key!r} has inconsistent offsets")
        if end > data_len:
            raise ValidationError(name, f"truncated safetensors file: tensor {key!r} runs past the end")
        end_max = max(end_max, end)
    if end_max != data_len:
        raise ValidationError(name, "invalid safetensors file: trailing bytes after the last tensor")
    if not header:
        raise ValidationError(name, "safetensors file holds no tensors")
    return SafetensorsInfo(
        path=path,
        size=size,
        tensor_count=len(header),
        metadata={str(k): str(v) for k, v in metadata.items()},
        lora_rank=_lora_rank(header),
        keys=tuple(sorted(header)),
    )
