"""The embedded toy-world model family: a tiny Stable-Diffusion-style pipeline trained by the project.

``MODEL_DIR`` is a diffusers folder that ``StableDiffusionPipeline.from_pretrained`` loads offline;
``CONTROLNET_DIR`` holds its canny-edge ``ControlNetModel``. Importing this package is cheap (no torch).
"""

from __future__ import annotations

import json
from pathlib import Path

MODEL_ID = "embedded:toyworld"
MODEL_DIR: Path = Path(__file__).resolve().parent / "weights"
CONTROLNET_DIR: Path = MODEL_DIR / "controlnet"

COLOURS = ("red", "green", "blue", "yellow", "orange", "purple")
SHAPES = ("circle", "square", "triangle")
POSITIONS = ("left", "center", "right", "top", "bottom")
BACKGROUNDS = ("white", "black", "gray", "teal")


def _count_params(folder: Path) -> int:
    """Parameters in the folder's .safetensors files, read from their headers (no torch needed)."""
    total = 0
    for f in folder.rglob("*.safetensors"):
        with open(f, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = json.loads(fh.read(n))
        for key, meta in header.items():
            if key == "__metadata__":
                continue
            count = 1
            for dim in meta["shape"]:
                count *= dim
            total += count
    return total


def model_info() -> dict:
    """What the studio shows about the embedded model (`studio models list --json`)."""
    exists = (MODEL_DIR / "model_index.json").exists()
    size = sum(f.stat().st_size for f in MODEL_DIR.rglob("*") if f.is_file()) if exists else 0
    build: dict = {}
    if (MODEL_DIR / "toyworld.json").exists():
        build = json.loads((MODEL_DIR / "toyworld.json").read_text())
    return {
        "id": MODEL_ID,
        "path": str(MODEL_DIR),
        "controlnet_path": str(CONTROLNET_DIR),
        "family": "sd",
        "size": 64,
        "available": exists,
        "params": _count_params(MODEL_DIR) if exists else 0,
        "size_on_disk": size,
        "knows": {
            "colours": list(COLOURS),
            "shapes": list(SHAPES),
            "positions": list(POSITIONS),
            "backgrounds": list(BACKGROUNDS),
        },
        "prompt_form": "a {colour} {shape} on a {background} background, {position}",
        "controlnet": {"preprocessor": "canny", "available": (CONTROLNET_DIR / "config.json").exists()},
        "evaluation": build.get("evaluation", {}),
        "train_seconds": build.get("train_seconds_total"),
    }
