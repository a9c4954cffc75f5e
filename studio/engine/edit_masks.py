"""Pixel work around an edit, without torch: masks, expand canvases, exact compositing and upscale tiles.

Masks are 8-bit ``L`` images, white (≥ 128) where the model repaints. A painted mask is turned into two:

* the **pipeline mask** (what the model repaints): the painted mask grown by ``mask_blur`` pixels and then to
  whole latent cells, so that a thin stroke is never lost when diffusers shrinks the mask to the latent grid;
* the **composite alpha** (how the decoded picture is laid over the source): 0 everywhere outside the painted
  mask, so those pixels are the source's exactly; inside it a soft edge that ramps up over ``mask_blur``
  pixels. ``mask_blur`` 0 gives a hard edge.

A1111 blurs its mask outwards; the studio feathers inwards, so that "outside the mask nothing changes" holds
to the pixel. :func:`keep_colours` lays a picture's detail over a reference's colours (an upscale keeps its
source's colours). This module imports neither torch nor diffusers.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, UnidentifiedImageError

from studio.errors import ValidationError

#: where the source sits on an expanded canvas: (share of the free width left of it, share of the free
#: height above it)
ANCHORS: dict[str, tuple[float, float]] = {
    "center": (0.5, 0.5),
    "left": (0.0, 0.5),
    "right": (1.0, 0.5),
    "top": (0.5, 0.0),
    "bottom": (0.5, 1.0),
    "top-left": (0.0, 0.0),
    "top-right": (1.0, 0.0),
    "bottom-left": (0.0, 1.0),
    "bottom-right": (1.0, 1.0),
}
MAX_MASK_BLUR = 64


def load_mask(
    source: Image.Image | str | Path | bytes, size: tuple[int, int], field: str = "mask"
) -> Image.Image:
    """A painted mask as a binary ``L`` image (255 = repaint) of exactly ``size``.

    An image with transparency (a painted layer, as ``gr.ImageEditor`` gives) counts its painted pixels
    (alpha ≥ 128); an opaque one its light pixels (luminance ≥ 128). A mask of another size, or one with
    nothing painted, is refused with a ValidationError naming ``field``.
    """
    image = _open(source, field)
    if image.size != tuple(size):
        raise ValidationError(
            field,
            f"is {image.width}x{image.height} but the image is {size[0]}x{size[1]}: paint it on the image",
        )
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"))
        values = alpha if alpha.min() < 255 else np.asarray(rgba.convert("L"))
    else:
        values = np.asarray(image.convert("L"))
    binary = np.where(values >= 128, 255, 0).astype(np.uint8)
    if not binary.any():
        raise ValidationError(field, "is empty: paint the region to repaint")
    return Image.fromarray(binary, "L")


def _open(source: Image.Image | str | Path | bytes, field: str) -> Image.Image:
    if isinstance(source, Image.Image):
        return source.copy()
    if isinstance(source, bytes | bytearray):
        name, data = "upload", bytes(source)
    else:
        path = Path(source)
        name = path.name
        if not path.is_file():
            raise ValidationError(field, f"{name}: no such file")
        data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValidationError(field, f"{name}: not a readable image ({type(exc).__name__})") from None


def check_anchor(anchor: str, field: str = "anchor") -> str:
    """``anchor`` normalised (``centre`` → ``center``, ``_`` → ``-``), or a ValidationError listing them."""
    text = str(anchor or "center").strip().lower().replace("_", "-").replace("centre", "center")
    if text not in ANCHORS:
        raise ValidationError(field, f"{anchor!r} is not an anchor; use one of {', '.join(ANCHORS)}")
    return text


def check_mask_blur(blur: object, field: str = "mask_blur") -> int:
    """A mask blur in whole pixels, 0 to :data:`MAX_MASK_BLUR`."""
    if isinstance(blur, bool) or not isinstance(blur, int | float) or float(blur) != int(blur):
        raise ValidationError(field, f"must be a whole number of pixels, not {blur!r}")
    if not 0 <= int(blur) <= MAX_MASK_BLUR:
        raise ValidationError(field, f"{int(blur)} is outside 0-{MAX_MASK_BLUR}")
    return int(blur)


def anchor_offset(source: tuple[int, int], canvas: tuple[int, int], anchor: str) -> tuple[int, int]:
    """Top-left corner of a ``source``-sized picture placed on ``canvas`` by ``anchor`` (whole pixels)."""
    fx, fy = ANCHORS[check_anchor(anchor)]
    return round((canvas[0] - source[0]) * fx), round((canvas[1] - source[1]) * fy)


def expand_canvas(
    source: Image.Image, size: tuple[int, int], anchor: str
) -> tuple[Image.Image, Image.Image, tuple[int, int]]:
    """(canvas, mask, offset) for expanding ``source`` to ``size``: the source placed by ``anchor``, the new
    area filled by repeating the source's edge pixels (a neutral start for the model), and the mask white
    over the new area only. Each side of ``size`` must be at least the source's, one of them larger."""
    width, height = size
    if width < source.width or height < source.height:
        raise ValidationError(
            "size",
            f"{width}x{height} is smaller than the image ({source.width}x{source.height}): "
            "expand only grows it",
        )
    if (width, height) == source.size:
        raise ValidationError("size", f"the image is already {width}x{height}: choose a larger size")
    left, top = anchor_offset(source.size, size, anchor)
    pixels = np.asarray(source.convert("RGB"))
    pad = ((top, height - source.height - top), (left, width - source.width - left), (0, 0))
    canvas = Image.fromarray(np.pad(pixels, pad, mode="edge"), "RGB")
    mask = np.full((height, width), 255, dtype=np.uint8)
    mask[top : top + source.height, left : left + source.width] = 0
    return canvas, Image.fromarray(mask, "L"), (left, top)


def pipeline_mask(mask: Image.Image, blur: int, cell: int) -> Image.Image:
    """The mask the model repaints: ``mask`` grown by ``blur`` pixels, then to whole ``cell``×``cell`` latent
    cells (the image's sides are multiples of ``cell``)."""
    grown = mask.filter(ImageFilter.MaxFilter(2 * blur + 1)) if blur > 0 else mask
    values = np.asarray(grown) >= 128
    h, w = values.shape
    if cell > 1 and h % cell == 0 and w % cell == 0:
        cells = values.reshape(h // cell, cell, w // cell, cell).any(axis=(1, 3))
        values = np.repeat(np.repeat(cells, cell, axis=0), cell, axis=1)
    return Image.fromarray(np.where(values, 255, 0).astype(np.uint8), "L")


def composite_alpha(mask: Image.Image, blur: int) -> np.ndarray:
    """Per-pixel weight (0-1, float32) of the model's picture: 0 outside the painted ``mask``; inside it a
    linear ramp over ``blur`` pixels from the edge (``d / blur`` at ``d`` pixels in, square distance), 1
    deeper in. ``blur`` 0: the painted mask as is."""
    painted = np.asarray(mask) >= 128
    if blur <= 0:
        return painted.astype(np.float32)
    depth = painted.astype(np.float32)  # pixels at least 1 in
    eroded = mask
    for _ in range(blur - 1):  # pixels at least k + 1 in: the mask eroded k times by a 3x3 square
        eroded = eroded.filter(ImageFilter.MinFilter(3))
        depth += np.asarray(eroded) >= 128
    return (depth / blur).astype(np.float32)


def composite(source: Image.Image, generated: Image.Image, alpha: np.ndarray) -> Image.Image:
    """``generated`` laid over ``source`` by ``alpha``; where alpha is 0 the source's pixels, unchanged."""
    src = np.asarray(source.convert("RGB"))
    gen = np.asarray(generated.convert("RGB").resize(source.size, Image.Resampling.LANCZOS))
    a = alpha[..., None]
    mixed = np.rint(src.astype(np.float32) * (1.0 - a) + gen.astype(np.float32) * a).astype(np.uint8)
    return Image.fromarray(np.where(a > 0.0, mixed, src), "RGB")


def resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``image`` resized to ``size`` with Lanczos (the first half of an upscale)."""
    return image.convert("RGB").resize(size, Image.Resampling.LANCZOS)


@dataclass(frozen=True)
class Tile:
    """One upscale tile: its box on the big picture (see :func:`tile_weight` for how it blends)."""

    left: int
    top: int
    width: int
    height: int


def tile_boxes(size: tuple[int, int], tile: int, overlap: int) -> list[Tile]:
    """Tiles of ``tile`` pixels covering ``size`` with at least ``overlap`` pixels shared between neighbours
    (the last tile of a row or column is moved back to end at the edge). Deterministic order: rows, then
    columns."""
    return [
        Tile(left, top, min(tile, size[0]), min(tile, size[1]))
        for top in _starts(size[1], tile, overlap)
        for left in _starts(size[0], tile, overlap)
    ]


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    step = max(1, tile - overlap)
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return sorted(set(starts))


def tile_weight(box: Tile, size: tuple[int, int], overlap: int) -> np.ndarray:
    """A tile's blending weight: 1 in its middle, ramping linearly to near 0 over ``overlap`` pixels on each
    side that borders another tile (sides on the picture's edge stay 1)."""
    wx = _ramp(box.width, overlap, box.left > 0, box.left + box.width < size[0])
    wy = _ramp(box.height, overlap, box.top > 0, box.top + box.height < size[1])
    return np.outer(wy, wx).astype(np.float32)


def _ramp(length: int, overlap: int, start: bool, end: bool) -> np.ndarray:
    weights = np.ones(length, dtype=np.float32)
    if overlap <= 0:
        return weights
    ramp = (np.arange(overlap, dtype=np.float32) + 1.0) / (overlap + 1.0)
    if start:
        weights[:overlap] = np.minimum(weights[:overlap], ramp)
    if end:
        weights[-overlap:] = np.minimum(weights[-overlap:], ramp[::-1])
    return weights


def blend_tiles(
    size: tuple[int, int], tiles: Iterator[tuple[Tile, Image.Image]], overlap: int
) -> Image.Image:
    """Blend processed tiles into one picture of ``size`` by their weights."""
    total = np.zeros((size[1], size[0], 3), dtype=np.float64)
    weight = np.zeros((size[1], size[0], 1), dtype=np.float64)
    for box, picture in tiles:
        w = tile_weight(box, size, overlap)[..., None]
        pixels = np.asarray(picture.convert("RGB"), dtype=np.float64)
        total[box.top : box.top + box.height, box.left : box.left + box.width] += pixels * w
        weight[box.top : box.top + box.height, box.left : box.left + box.width] += w
    return Image.fromarray(np.rint(total / np.maximum(weight, 1e-9)).clip(0, 255).astype(np.uint8), "RGB")


def keep_colours(reference: Image.Image, picture: Image.Image, sigma: float) -> Image.Image:
    """``picture`` with the low frequencies (a Gaussian blur of ``sigma`` pixels) of ``reference``: the
    picture's detail over the reference's colours (``picture + blur(reference - picture)``)."""
    if sigma <= 0:
        return picture
    ref = np.asarray(reference.convert("RGB"), dtype=np.float32)
    pic = np.asarray(picture.convert("RGB"), dtype=np.float32)
    fixed = pic + _gaussian(ref - pic, sigma)
    return Image.fromarray(np.rint(fixed).clip(0, 255).astype(np.uint8), "RGB")


def _gaussian(values: np.ndarray, sigma: float) -> np.ndarray:
    """A separable Gaussian blur of an (H, W, C) array, edges reflected."""
    radius = max(1, int(3.0 * sigma + 0.5))
    offsets = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    out = values
    for axis in (0, 1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect" if out.shape[axis] > radius else "edge")
        length = out.shape[axis]
        out = sum(
            weight * np.take(padded, np.arange(i, i + length), axis=axis) for i, weight in enumerate(kernel)
        )
    return out
