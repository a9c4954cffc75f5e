"""Test helpers (importable from any test as ``from helpers import ...``: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_BRANDS = REPO_ROOT / "brands"


def snapshot(services: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, for 'nothing changed' assertions."""
    from sqlalchemy import select

    from studio.db.base import Base

    with services.engine.connect() as conn:
        return {
            table.name: [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
            for table in Base.metadata.sorted_tables
        }


def files_under(folder: Path) -> list[str]:
    """Relative paths of the files under ``folder`` (sorted)."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def safetensors_bytes(rank: int = 4, dim: int = 8, seed: int = 0) -> bytes:
    """A small, valid diffusers-style LoRA safetensors file, written without torch."""
    tensors = {
        "unet.down.attn.to_q.lora_A.weight": (rank, dim),
        "unet.down.attn.to_q.lora_B.weight": (dim, rank),
    }
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    data = b""
    for name, shape in tensors.items():
        count = shape[0] * shape[1]
        chunk = struct.pack(f"<{count}f", *[((i + seed) % 7) / 10 for i in range(count)])
        header[name] = {
            "dtype": "F32",
            "shape": list(shape),
            "data_offsets": [len(data), len(data) + len(chunk)],
        }
        data += chunk
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def training_images(folder: Path, count: int = 5, side: int = 32) -> list[Path]:
    """``count`` small PNGs to train on, named ``orange_square_<i>.png``: an orange square on a teal ground,
    moving a little from image to image."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        image = Image.new("RGB", (side, side), (0, 128, 128))
        image.paste(Image.new("RGB", (side // 2, side // 2), (245, 135, 25 + 10 * i)), (4 + 2 * i, 8))
        path = folder / f"orange_square_{i}.png"
        image.save(path)
        paths.append(path)
    return paths
