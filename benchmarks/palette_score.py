"""Palette score benchmark: one 512×512 image against a brand palette (target ≤ 50 ms on this CPU).

Times :func:`studio.palette.palette_score` (downsample, dominant colours, CIELAB, CIEDE2000 with
colour-science) on a busy synthetic image — gradients, shapes and noise — and prints the median, with the
time of the dominant-colour step alone.

    .venv/bin/python benchmarks/palette_score.py [--repeat 50] [--size 512]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from studio.palette import dominant_colours, palette_score  # noqa: E402

PALETTE = ("#d62828", "#f77f00", "#fcbf49", "#eae2b7", "#003049")


def busy_image(side: int, seed: int = 0) -> Image.Image:
    """A gradient background with coloured shapes and pixel noise (many distinct colours)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side] / side
    base = np.stack([x * 255, y * 200, (1 - x) * 180], axis=-1)
    base += rng.normal(0, 12, base.shape)
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rng.integers(0, side - 64, 2)
        w, h = rng.integers(32, side // 2, 2)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.ellipse((int(x0), int(y0), int(x0 + w), int(y0 + h)), fill=colour)
    return image


def median_ms(call: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        call()  # type: ignore[operator]
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    image = busy_image(args.size)
    result = palette_score(image, PALETTE, 0.5)  # warm-up (imports, caches)
    total = median_ms(lambda: palette_score(image, PALETTE, 0.5), args.repeat)
    dominant = median_ms(lambda: dominant_colours(image), args.repeat)
    print(f"palette score of one {args.size}x{args.size} image, median of {args.repeat}:")
    print(
        f"  palette_score (whole)      {total:7.2f} ms   target <= 50 ms: {'OK' if total <= 50 else 'OVER'}"
    )
    print(f"  dominant colours step      {dominant:7.2f} ms")
    print(f"  CIELAB + CIEDE2000 + rest  {total - dominant:7.2f} ms")
    print(f"  score {result.score:.3f}, flagged {result.flagged}, misses {[m.colour for m in result.misses]}")


if __name__ == "__main__":
    main()
