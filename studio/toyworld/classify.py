"""Explainable rules that read a toy-world image back: background, foreground colour, shape, position.

The rules, in order:
1. Background: the median colour of the 2-pixel frame around the image, named by the nearest background
   palette colour (Euclidean distance in RGB).
2. Shape mask: pixels farther than ``MASK_DISTANCE`` (RGB distance) from that median background colour; only
   the largest 4-connected component is kept, so stray specks do not count. Under ``MIN_AREA`` pixels:
   no shape.
3. Foreground colour: the median colour of the mask's inner pixels (pixels whose 4 neighbours are all in the
   mask, which skips anti-aliased edges), named by the nearest foreground palette colour.
   Both medians are kept (``background_rgb``, ``colour_rgb``) and also named by hue, saturation and value
   (``background_hsv``, ``colour_hsv``; the fixed thresholds are in ``colour_names``), which, unlike the
   nearest-colour rule, can say that a colour drifted out of its band.
4. Centroid: the mean (x, y) of the mask's pixels. Position: the nearest position anchor to the centroid.
5. Shape: the fill ratio = mask area / bounding-box area. A square fills its box (~1.0), a circle fills pi/4
   (~0.79), a triangle half (~0.5): >= 0.89 square, >= 0.65 circle, else triangle.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .colour_names import hsv_name
from .world import BACKGROUNDS, FG_COLOURS, POSITIONS

MASK_DISTANCE = 60.0
MIN_AREA = 12
SQUARE_FILL = 0.89
CIRCLE_FILL = 0.65


@dataclass(frozen=True)
class Reading:
    background: str
    colour: str | None
    shape: str | None
    position: str | None
    centroid: tuple[float, float] | None
    area: int
    fill: float | None
    background_rgb: tuple[float, float, float] = (0.0, 0.0, 0.0)
    colour_rgb: tuple[float, float, float] | None = None

    @property
    def background_hsv(self) -> str:
        """The background named by hue, saturation and value (``colour_names``)."""
        return hsv_name(self.background_rgb)

    @property
    def colour_hsv(self) -> str | None:
        """The foreground colour named by hue, saturation and value; None when no shape was found."""
        return None if self.colour_rgb is None else hsv_name(self.colour_rgb)


def _as_array(image) -> np.ndarray:
    arr = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return arr


def _nearest(colour: np.ndarray, palette: dict[str, tuple[int, int, int]]) -> str:
    names = list(palette)
    refs = np.array([palette[n] for n in names], dtype=np.float64)
    return names[int(np.argmin(((refs - colour) ** 2).sum(axis=1)))]


def background_colour(arr: np.ndarray) -> np.ndarray:
    frame = np.concatenate(
        [
            arr[:2].reshape(-1, 3),
            arr[-2:].reshape(-1, 3),
            arr[:, :2].reshape(-1, 3),
            arr[:, -2:].reshape(-1, 3),
        ]
    )
    return np.median(frame.astype(np.float64), axis=0)


def classify_background(image) -> str:
    return _nearest(background_colour(_as_array(image)), BACKGROUNDS)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    h, w = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    best: list[tuple[int, int]] = []
    for y0, x0 in zip(*np.nonzero(mask), strict=True):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        comp, queue = [], deque([(y0, x0)])
        while queue:
            y, x = queue.popleft()
            comp.append((y, x))
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < h and 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                    seen[ny, nx] = True
                    queue.append((ny, nx))
        if len(comp) > len(best):
            best = comp
    out = np.zeros_like(mask, dtype=bool)
    if best:
        ys, xs = zip(*best, strict=True)
        out[list(ys), list(xs)] = True
    return out


def shape_mask(image) -> np.ndarray:
    arr = _as_array(image).astype(np.float64)
    dist = np.sqrt(((arr - background_colour(arr)) ** 2).sum(axis=-1))
    return _largest_component(dist > MASK_DISTANCE)


def classify(image) -> Reading:
    arr = _as_array(image)
    bg_rgb = background_colour(arr)
    background = _nearest(bg_rgb, BACKGROUNDS)
    bg_tuple = tuple(float(c) for c in bg_rgb)
    mask = shape_mask(arr)
    area = int(mask.sum())
    if area < MIN_AREA:
        return Reading(background, None, None, None, None, area, None, bg_tuple)
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    pixels = arr[inner] if inner.sum() >= 4 else arr[mask]
    fg_rgb = np.median(pixels.astype(np.float64), axis=0)
    colour = _nearest(fg_rgb, FG_COLOURS)
    ys, xs = np.nonzero(mask)
    cx, cy = float(xs.mean()), float(ys.mean())
    position = min(POSITIONS, key=lambda p: (POSITIONS[p][0] - cx) ** 2 + (POSITIONS[p][1] - cy) ** 2)
    box = (xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1)
    fill = area / box
    shape = "square" if fill >= SQUARE_FILL else "circle" if fill >= CIRCLE_FILL else "triangle"
    fg_tuple = tuple(float(c) for c in fg_rgb)
    return Reading(background, colour, shape, position, (cx, cy), area, fill, bg_tuple, fg_tuple)
