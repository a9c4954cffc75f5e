"""Near-identical missed colours are reported once (CIEDE2000 below MERGE_DELTA_E), in new scores and in the
misses images already store."""

from __future__ import annotations

import itertools

import numpy as np
from PIL import Image, ImageDraw

from studio.palette import (
    MERGE_DELTA_E,
    PaletteMiss,
    _lab,
    colour,
    merge_missed,
    merge_misses,
    palette_score,
)

WHITES = (
    "#ffffff",
    "#fafafa",
    "#f3f3f1",
)  # CIEDE2000 under 3 from each other: "several near-identical whites"


def delta_e(a: str, b: str) -> float:
    from studio.colours import hex_to_rgb

    lab = _lab(np.array([hex_to_rgb(a), hex_to_rgb(b)]))
    return float(colour.delta_E(lab[0], lab[1], method="CIE 2000"))


def banded(colours: tuple[str, ...], shape: str = "#dc2828", size: int = 64) -> Image.Image:
    """Vertical bands of ``colours`` (equal widths) with a small disc of ``shape`` in the middle."""
    image = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(image)
    width = size / len(colours)
    for i, fill in enumerate(colours):
        draw.rectangle((round(i * width), 0, round((i + 1) * width) - 1, size), fill=fill)
    draw.ellipse((size // 2 - 8, size // 2 - 8, size // 2 + 8, size // 2 + 8), fill=shape)
    return image


def test_a_background_in_near_identical_whites_is_one_miss() -> None:
    assert max(delta_e(a, b) for a, b in itertools.combinations(WHITES, 2)) < 3
    result = palette_score(banded(WHITES), ["teal"])
    whites = [m for m in result.misses if delta_e(m.colour, "#ffffff") < MERGE_DELTA_E]
    assert len(whites) == 1, [m.colour for m in result.misses]
    assert whites[0].share > 0.8  # the three bands together (the disc is about 5%)
    assert whites[0].nearest == "#008080"
    for a, b in itertools.combinations(result.misses, 2):
        assert delta_e(a.colour, b.colour) >= MERGE_DELTA_E, (a, b)


def test_different_shades_stay_apart_and_shares_add_up() -> None:
    misses = [
        PaletteMiss("#ffffff", 0.40, "#008080", 60.0),
        PaletteMiss("#fafafa", 0.20, "#008080", 59.0),
        PaletteMiss("#c0c0c0", 0.15, "#008080", 40.0),  # 14 from white: a different shade
        PaletteMiss("#000000", 0.10, "#008080", 30.0),
        PaletteMiss("#020502", 0.05, "#008080", 29.0),  # 2 from black
    ]
    merged = merge_misses(misses, ["teal"])
    assert [round(m.share, 2) for m in merged] == [0.60, 0.15, 0.15]
    assert merged[1].colour == "#c0c0c0"
    white, black = merged[0], merged[2]
    assert delta_e(white.colour, "#ffffff") < 1.5 and delta_e(black.colour, "#000000") < 2
    assert white.nearest == "#008080" and abs(white.delta_e - delta_e(white.colour, "#008080")) < 0.01


def test_the_merged_colour_leans_to_the_larger_share() -> None:
    big, small = PaletteMiss("#2060c0", 0.30, "#008080", 20.0), PaletteMiss("#3070d0", 0.10, "#008080", 22.0)
    assert delta_e(big.colour, small.colour) < MERGE_DELTA_E
    (merged,) = merge_misses([small, big], ["#008080"])
    assert delta_e(merged.colour, big.colour) < delta_e(merged.colour, small.colour)
    assert merged.share == 0.4


def test_the_threshold_decides() -> None:
    a, b = PaletteMiss("#ffffff", 0.5, "#000000", 100.0), PaletteMiss("#c0c0c0", 0.2, "#000000", 67.0)
    apart = delta_e(a.colour, b.colour)
    assert len(merge_misses([a, b], within=apart - 0.1)) == 2
    assert len(merge_misses([a, b], within=apart + 0.1)) == 1
    assert merge_misses([]) == ()


def test_stored_misses_are_merged_for_display() -> None:
    stored = [
        {"colour": "#0361b3", "share": 0.241, "nearest": "#008080", "delta_e": 27.81},
        {"colour": "#0160ad", "share": 0.2324, "nearest": "#008080", "delta_e": 27.22},
        {"colour": "#015998", "share": 0.0923, "nearest": "#008080", "delta_e": 26.22},
        {"colour": "#79712b", "share": 0.0872, "nearest": "#008080", "delta_e": 30.3},
    ]
    shown = merge_missed(stored)
    assert len(shown) == 2 and shown[1]["colour"] == "#79712b"
    assert shown[0]["share"] == round(0.241 + 0.2324 + 0.0923, 4) and shown[0]["nearest"] == "#008080"
    assert set(shown[0]) == {"colour", "share", "nearest", "delta_e"}
    odd = [{"colour": "not a colour"}, {"share": 1}]
    assert merge_missed(odd) == odd  # not what a score stores: left as it is
