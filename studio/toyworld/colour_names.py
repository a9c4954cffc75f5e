"""Name a colour by hue, saturation and value, with fixed thresholds (not by the nearest world colour).

The nearest-colour rule in ``classify`` always answers with a world colour, so a teal that drifted to
(9, 106, 166) still reads "teal" and a gray that drifted to (119, 96, 169) still reads "gray". This rule names
the colour a person would: it can answer a colour the world does not have ("magenta") or a neighbour of the
intended one, so drift under guidance shows up in the evaluation.

HSV as in ``colorsys.rgb_to_hsv`` (hue in degrees 0-360, saturation and value 0-1). The rules, in order:

| name    | rule                                           | world colour (hue, sat, value)  |
|---------|------------------------------------------------|---------------------------------|
| black   | value < 0.20                                   | (0, 0, 0): -, 0, 0              |
| white   | saturation < 0.25 and value >= 0.80            | (255, 255, 255): -, 0, 1        |
| gray    | saturation < 0.25 and 0.20 <= value < 0.80     | (128, 128, 128): -, 0, 0.50     |
| red     | saturation >= 0.25, hue >= 345 or hue < 15     | (220, 40, 40): 0, 0.82, 0.86    |
| orange  | saturation >= 0.25, 15 <= hue < 40             | (245, 135, 25): 30, 0.90, 0.96  |
| yellow  | saturation >= 0.25, 40 <= hue < 70             | (245, 220, 40): 53, 0.84, 0.96  |
| green   | saturation >= 0.25, 70 <= hue < 160            | (40, 170, 60): 129, 0.76, 0.67  |
| teal    | saturation >= 0.25, 160 <= hue <= 200          | (0, 128, 128): 180, 1, 0.50     |
| blue    | saturation >= 0.25, 200 < hue < 255            | (40, 80, 230): 227, 0.83, 0.90  |
| purple  | saturation >= 0.25, 255 <= hue < 310 (violet)  | (140, 55, 190): 278, 0.71, 0.75 |
| magenta | saturation >= 0.25, 310 <= hue < 345           | none (always a miss)            |

Yellow and orange part at 40 degrees, a little below the midpoint of their world hues (30 and 53): an
orange-yellow of hue 41-52 still counts as yellow, a hue of 39 or less does not.
"""

from __future__ import annotations

import colorsys
from collections.abc import Sequence

BLACK_VALUE = 0.20  # value below this: black, whatever the hue
GRAY_SATURATION = 0.25  # saturation below this: white, gray or black (no hue)
WHITE_VALUE = 0.80  # an unsaturated colour at least this bright: white

# (name, first hue in degrees, end hue): the band is first <= hue < end; teal also takes hue == 200.
HUE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("red", 345.0, 360.0),
    ("red", 0.0, 15.0),
    ("orange", 15.0, 40.0),
    ("yellow", 40.0, 70.0),
    ("green", 70.0, 160.0),
    ("teal", 160.0, 200.0),
    ("blue", 200.0, 255.0),
    ("purple", 255.0, 310.0),
    ("magenta", 310.0, 345.0),
)
TEAL_HUE_MAX = 200.0  # teal's band is closed: 160-200 inclusive, as issue 18 defines it


def hsv(rgb: Sequence[float]) -> tuple[float, float, float]:
    """(hue in degrees, saturation, value) of an 8-bit RGB colour (floats allowed, e.g. a median)."""
    r, g, b = (min(max(float(c), 0.0), 255.0) / 255.0 for c in rgb)
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    return h * 360.0, s, v


def hsv_name(rgb: Sequence[float]) -> str:
    """The name of an 8-bit RGB colour by the fixed HSV rules of this module's table."""
    hue, sat, val = hsv(rgb)
    if val < BLACK_VALUE:
        return "black"
    if sat < GRAY_SATURATION:
        return "white" if val >= WHITE_VALUE else "gray"
    if 160.0 <= hue <= TEAL_HUE_MAX + 1e-9:  # closed at 200 (rounding of colorsys allowed for)
        return "teal"
    for name, first, end in HUE_BANDS:
        if first <= hue < end:
            return name
    return "red"  # hue == 360.0 cannot come out of colorsys; kept for completeness
