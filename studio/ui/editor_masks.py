"""The painted masks of the studio's ImageEditors (issue 19): the strokes of an editor's value as a mask, a
marked region shown in the picture, and strokes added to a marked region. Pure functions on PIL pictures."""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image as PILImage

#: the brush colour of every region editor (the Generate tab's edit mode, the Review tab's region)
MASK_COLOUR = "#ff00ff"


def painted_mask(value: Any) -> PILImage.Image | None:
    """The painted pixels of an ImageEditor value (every layer's alpha, merged) as an RGBA picture whose
    painted pixels are opaque; None when nothing is painted."""
    layers = (value or {}).get("layers") if isinstance(value, dict) else None
    alpha: np.ndarray | None = None
    for layer in layers or []:
        if layer is None:
            continue
        a = np.asarray(PILImage.open(layer) if isinstance(layer, str) else layer.convert("RGBA"))[..., 3]
        alpha = a if alpha is None else np.maximum(alpha, a)
    if alpha is None or not (alpha >= 128).any():
        return None
    mask = np.zeros((*alpha.shape, 4), np.uint8)
    mask[..., 0], mask[..., 2], mask[..., 3] = 255, 255, np.where(alpha >= 128, 255, 0)
    return PILImage.fromarray(mask, "RGBA")


def region_shown(source: PILImage.Image, mask: PILImage.Image) -> PILImage.Image:
    """``source`` with a marked region tinted magenta: what the editor shows on Fix region (Gradio's editor
    draws no paint layer given with its value, so the region is shown in the picture it draws)."""
    picture = source.convert("RGBA")
    if mask.size != picture.size:
        return picture
    tint = PILImage.new("RGBA", picture.size, (255, 0, 255, 255))
    marked = PILImage.fromarray(np.where(np.asarray(mask.convert("L")) >= 128, 166, 0).astype(np.uint8))
    return PILImage.composite(tint, picture, marked)


def with_region(painted: PILImage.Image, mask: PILImage.Image) -> PILImage.Image:
    """The painted strokes (RGBA) and a marked region (L) as one mask: the region and what was added."""
    alpha = np.asarray(painted)[..., 3]
    marked = np.asarray(mask.convert("L")) >= 128
    if marked.shape != alpha.shape:
        return painted
    merged = np.zeros((*alpha.shape, 4), np.uint8)
    merged[..., 0], merged[..., 2] = 255, 255
    merged[..., 3] = np.where((alpha >= 128) | marked, 255, 0)
    return PILImage.fromarray(merged, "RGBA")
