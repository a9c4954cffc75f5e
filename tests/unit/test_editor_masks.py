"""The region editors' masks (issue 19): Fix region shows the marked region tinted in the picture, and
strokes painted then add to the region rather than replace it."""

from __future__ import annotations

import numpy as np
from PIL import Image

from studio.ui.editor_masks import painted_mask, region_shown, with_region


def _region() -> Image.Image:
    mask = Image.new("L", (16, 8), 0)
    mask.paste(255, (0, 0, 4, 4))
    return mask


def test_the_marked_region_is_tinted_and_the_rest_of_the_picture_kept() -> None:
    source = Image.new("RGB", (16, 8), (10, 200, 30))
    shown = np.asarray(region_shown(source, _region()).convert("RGB")).astype(int)
    assert (shown[4:, :] == (10, 200, 30)).all() and (shown[:, 4:] == (10, 200, 30)).all()
    red, green, blue = shown[0, 0]
    assert red > 150 and blue > 150 and green < 100  # magenta over the region


def test_strokes_on_fix_region_add_to_the_region() -> None:
    strokes = np.zeros((8, 16, 4), np.uint8)
    strokes[6:, 12:, 3] = 255
    layer = Image.fromarray(strokes, "RGBA")
    painted = painted_mask({"layers": [layer]})
    assert painted is not None
    merged = np.asarray(with_region(painted, _region()))[..., 3] >= 128
    assert merged[:4, :4].all() and merged[6:, 12:].all()
    assert merged.sum() == 16 + 8  # nothing else
