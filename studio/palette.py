"""Brand palette check: an image's dominant colours against the brand palette by CIEDE2000 (pure, no torch).

How the score is made:

1. the image is downsampled to at most :data:`ANALYSIS_SIDE` pixels a side (box filter) and quantised to at
   most :data:`DOMINANT_COLOURS` colours — Pillow's median cut, refined by k-means in CIELAB (a perceptual
   space) — each with its share of the pixels;
2. each dominant colour and each palette colour go to CIELAB (sRGB, D65) with ``colour-science``, and the
   nearest palette colour is found by ``colour.delta_E(..., method="CIE 2000")``;
3. a dominant colour *matches* when that distance is at most :data:`MATCH_DELTA_E` (clearly the same colour
   family; 2.3 is "just noticeable", 10+ is "a different shade");
4. **score** = the share of pixels whose dominant colour matches (0–1); the image is **flagged** off-palette
   when the score is below the brand's ``palette_threshold`` (default :data:`DEFAULT_THRESHOLD`);
5. **misses** = the dominant colours that matched no palette colour, near-identical ones merged
   (:func:`merge_misses`: CIEDE2000 below :data:`MERGE_DELTA_E`), each group covering at least
   :data:`MIN_MISS_SHARE` of the image, largest first, each with its nearest palette colour and distance.

Why merge: k-means splits one large area (a white background, a blue sky) into several clusters a few
CIEDE2000 apart, which a reviewer would read as "several near-identical whites". Below 10, two colours are
the same shade to the eye (2.3 is "just noticeable", 10+ "a different shade"), so clusters closer than
:data:`MERGE_DELTA_E` are reported as one colour: their share-weighted mean in CIELAB, their shares added.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from studio.colours import NAMED_COLOURS, hex_to_rgb

ANALYSIS_SIDE = 64
DOMINANT_COLOURS = 8
KMEANS_ROUNDS = 5
MATCH_DELTA_E = 15.0
MIN_MISS_SHARE = 0.05
MERGE_DELTA_E = 10.0
DEFAULT_THRESHOLD = 0.5


def _import_colour() -> Any:
    """Import colour-science without its side effects on other libraries.

    Without matplotlib installed, ``colour.plotting`` puts ``MagicMock`` objects into ``sys.modules`` for
    matplotlib and friends; Gradio then "imports matplotlib" and fails in every event. Those stand-ins are
    removed again (colour keeps its own references), and its warning about plotting extras is silenced.
    """
    before = set(sys.modules)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour as module
    from unittest.mock import NonCallableMock

    for name in set(sys.modules) - before:
        if isinstance(sys.modules.get(name), NonCallableMock):
            del sys.modules[name]
    return module


colour = _import_colour()


@dataclass(frozen=True)
class PaletteMiss:
    """A dominant colour of the image that is far from every palette colour."""

    colour: str
    share: float
    nearest: str
    delta_e: float

    def as_dict(self) -> dict[str, Any]:
        return {"colour": self.colour, "share": self.share, "nearest": self.nearest, "delta_e": self.delta_e}


@dataclass(frozen=True)
class PaletteScore:
    """Score 0–1 (share of on-palette pixels), the off-palette flag, the threshold used and the misses."""

    score: float
    flagged: bool
    threshold: float
    misses: tuple[PaletteMiss, ...] = ()

    def misses_json(self) -> list[dict[str, Any]]:
        return [miss.as_dict() for miss in self.misses]


def _to_hex(rgb: Sequence[int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*(int(v) for v in rgb[:3]))


def _palette_hex(value: str) -> str:
    text = value.strip().lower()
    if text in NAMED_COLOURS:
        return NAMED_COLOURS[text]
    if len(text) == 4 and text.startswith("#"):
        text = "#" + "".join(c * 2 for c in text[1:])
    if len(text) != 7 or not text.startswith("#"):
        raise ValueError(f"palette colour {value!r} is not #rrggbb or a named colour")
    return text


def _lab(rgb255: np.ndarray) -> np.ndarray:
    """sRGB 0–255 rows → CIELAB rows (D65)."""
    return colour.XYZ_to_Lab(colour.sRGB_to_XYZ(np.asarray(rgb255, dtype=np.float64) / 255.0))


def dominant_colours(
    image: Image.Image, count: int = DOMINANT_COLOURS
) -> list[tuple[tuple[int, int, int], float]]:
    """The image's dominant colours as ((r, g, b), share), largest share first.

    Pillow's median cut (in RGB) gives the starting clusters; they are then refined by k-means in CIELAB
    (:data:`KMEANS_ROUNDS` at most), so pixels are grouped by perceptual distance, not by RGB boxes.
    """
    rgb = image.convert("RGB")
    scale = max(rgb.width, rgb.height) / ANALYSIS_SIDE
    if scale > 1:
        size = (max(1, round(rgb.width / scale)), max(1, round(rgb.height / scale)))
        rgb = rgb.resize(size, Image.Resampling.BOX)
    quantised = rgb.quantize(colors=count, method=Image.Quantize.MEDIANCUT)
    labels = np.asarray(quantised, dtype=np.int64).reshape(-1)
    pixels = _lab(np.asarray(rgb, dtype=np.float64).reshape(-1, 3))
    labels = np.unique(labels, return_inverse=True)[1]
    squares = (pixels**2).sum(axis=1)
    for _ in range(KMEANS_ROUNDS + 1):
        counts = np.bincount(labels)
        kept = counts > 0  # a cluster that lost every pixel is dropped
        sums = np.stack([np.bincount(labels, weights=pixels[:, j]) for j in range(3)], axis=1)
        centres = sums[kept] / counts[kept, None]
        labels = np.cumsum(kept)[labels] - 1
        # squared Euclidean distance in CIELAB: |p|² - 2 p·c + |c|²
        moved = (squares[:, None] - 2 * pixels @ centres.T + (centres**2).sum(axis=1)[None, :]).argmin(axis=1)
        if np.array_equal(moved, labels):
            break
        labels = moved
    shares = np.bincount(labels, minlength=len(centres)) / len(labels)
    srgb = colour.XYZ_to_sRGB(colour.Lab_to_XYZ(centres))
    colours = np.clip(np.round(np.atleast_2d(srgb) * 255), 0, 255).astype(int)
    result = [
        ((int(c[0]), int(c[1]), int(c[2])), float(share)) for c, share in zip(colours, shares, strict=True)
    ]
    return sorted(result, key=lambda item: item[1], reverse=True)


def palette_score(image: Image.Image, palette: Sequence[str], threshold: float | None = None) -> PaletteScore:
    """Score ``image`` against ``palette`` (hex values or toy-world colour names); see the module docstring.

    An empty palette scores 1.0 and is never flagged (there is nothing to be off).
    """
    limit = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    targets = [_palette_hex(value) for value in palette]
    if not targets:
        return PaletteScore(score=1.0, flagged=False, threshold=limit)
    dominant = dominant_colours(image)
    image_lab = _lab(np.array([rgb for rgb, _ in dominant]))
    palette_lab = _lab(np.array([hex_to_rgb(value) for value in targets]))
    distances = colour.delta_E(image_lab[:, None, :], palette_lab[None, :, :], method="CIE 2000")
    distances = np.atleast_2d(distances)
    nearest = distances.argmin(axis=1)
    nearest_distance = distances.min(axis=1)
    shares = np.array([share for _, share in dominant])
    matched = nearest_distance <= MATCH_DELTA_E
    score = float(shares[matched].sum())
    unmatched = [
        PaletteMiss(
            colour=_to_hex(dominant[i][0]),
            share=float(shares[i]),
            nearest=targets[int(nearest[i])],
            delta_e=float(nearest_distance[i]),
        )
        for i in range(len(dominant))
        if not matched[i]
    ]
    misses = tuple(miss for miss in merge_misses(unmatched, targets) if miss.share >= MIN_MISS_SHARE)
    score = round(min(1.0, max(0.0, score)), 4)
    return PaletteScore(score=score, flagged=score < limit, threshold=limit, misses=misses)


def merge_misses(
    misses: Sequence[PaletteMiss], palette: Sequence[str] | None = None, within: float = MERGE_DELTA_E
) -> tuple[PaletteMiss, ...]:
    """Near-identical missed colours as one: largest share first, each colour joins the first group whose
    leading (largest) colour is less than ``within`` CIEDE2000 from it, else it leads a new group.

    A group is reported as its share-weighted mean in CIELAB with the shares added, and its nearest colour of
    ``palette`` (hex values or toy-world colour names) with the distance; without ``palette``, of the colours
    the misses named as nearest (for misses already stored). Shares are rounded to 4 decimals, distances to
    2; the order is largest share first.
    """
    if not misses:
        return ()
    ordered = sorted(misses, key=lambda miss: miss.share, reverse=True)
    labs = _lab(np.array([hex_to_rgb(miss.colour) for miss in ordered]))
    apart = np.atleast_2d(colour.delta_E(labs[:, None, :], labs[None, :, :], method="CIE 2000"))
    leaders: list[int] = []
    group = np.zeros(len(ordered), dtype=np.int64)
    for i in range(len(ordered)):
        leader = next((g for g, j in enumerate(leaders) if apart[i, j] < within), None)
        if leader is None:
            leaders.append(i)
            leader = len(leaders) - 1
        group[i] = leader
    shares = np.array([miss.share for miss in ordered])
    totals = np.bincount(group, weights=shares)
    sums = np.stack([np.bincount(group, weights=labs[:, k] * shares) for k in range(3)], axis=1)
    means = sums / np.maximum(totals, 1e-12)[:, None]
    srgb = np.clip(np.round(np.atleast_2d(colour.XYZ_to_sRGB(colour.Lab_to_XYZ(means))) * 255), 0, 255)
    candidates = list(
        dict.fromkeys([_palette_hex(c) for c in palette] if palette else [m.nearest for m in ordered])
    )
    candidate_lab = _lab(np.array([hex_to_rgb(c) for c in candidates]))
    # distances from the colours as reported (rounded to sRGB), so the numbers agree with the swatches
    distances = np.atleast_2d(
        colour.delta_E(_lab(srgb)[:, None, :], candidate_lab[None, :, :], method="CIE 2000")
    )
    merged = [
        PaletteMiss(
            colour=_to_hex(srgb[g]),
            share=round(float(totals[g]), 4),
            nearest=candidates[int(distances[g].argmin())],
            delta_e=round(float(distances[g].min()), 2),
        )
        for g in range(len(leaders))
    ]
    return tuple(sorted(merged, key=lambda miss: miss.share, reverse=True))


def merge_missed(misses: Sequence[dict[str, Any]], within: float = MERGE_DELTA_E) -> list[dict[str, Any]]:
    """:func:`merge_misses` on stored misses (``PaletteMiss.as_dict()`` rows, as images keep them)."""
    if len(misses) < 2:
        return [dict(miss) for miss in misses]
    try:
        parsed = [
            PaletteMiss(
                colour=_palette_hex(str(m["colour"])),
                share=float(m.get("share", 0.0)),
                nearest=_palette_hex(str(m.get("nearest") or m["colour"])),
                delta_e=float(m.get("delta_e", 0.0)),
            )
            for m in misses
        ]
    except (KeyError, TypeError, ValueError):  # not what palette_score stores: shown as it is
        return [dict(miss) for miss in misses]
    return [miss.as_dict() for miss in merge_misses(parsed, within=within)]
