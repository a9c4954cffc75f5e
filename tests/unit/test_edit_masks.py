"""Pixel work around edits (studio.engine.edit_masks): masks, expand canvases, exact compositing, tiles."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

from studio.engine.edit_masks import (
    ANCHORS,
    anchor_offset,
    blend_tiles,
    check_anchor,
    check_mask_blur,
    composite,
    composite_alpha,
    expand_canvas,
    keep_colours,
    load_mask,
    pipeline_mask,
    tile_boxes,
)
from studio.errors import ValidationError


def _noise(size: tuple[int, int], seed: int) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def _box_mask(size: tuple[int, int], box: tuple[int, int, int, int]) -> Image.Image:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    return mask


def test_a_mask_is_white_pixels_or_painted_alpha() -> None:
    opaque = _box_mask((16, 16), (4, 4, 7, 7))
    assert np.array_equal(np.asarray(load_mask(opaque, (16, 16))), np.asarray(opaque))
    layer = Image.new("RGBA", (16, 16), (0, 0, 0, 0))  # a painted layer: strokes where alpha is set
    ImageDraw.Draw(layer).rectangle((2, 2, 5, 5), fill=(0, 0, 0, 255))
    loaded = np.asarray(load_mask(layer, (16, 16)))
    assert loaded[3, 3] == 255 and loaded[10, 10] == 0 and loaded.sum() == 16 * 255
    buffer = io.BytesIO()
    opaque.save(buffer, format="PNG")
    assert np.array_equal(np.asarray(load_mask(buffer.getvalue(), (16, 16))), np.asarray(opaque))


@pytest.mark.parametrize(
    ("mask", "size", "message"),
    [
        (Image.new("L", (16, 16), 0), (16, 16), "mask: is empty"),
        (Image.new("L", (8, 16), 255), (16, 16), "mask: is 8x16 but the image is 16x16"),
        (b"not a png", (16, 16), "mask: upload: not a readable image"),
    ],
)
def test_bad_masks_are_refused_naming_the_field(mask: object, size: tuple[int, int], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load_mask(mask, size)  # type: ignore[arg-type]


def test_anchors_and_blur_are_checked() -> None:
    assert check_anchor("Centre") == "center" and check_anchor("top_left") == "top-left"
    with pytest.raises(ValidationError, match="anchor: 'middle' is not an anchor"):
        check_anchor("middle")
    assert check_mask_blur(4) == 4
    for bad in (-1, 65, 2.5, True, "4"):
        with pytest.raises(ValidationError, match="mask_blur"):
            check_mask_blur(bad)


def test_anchor_offsets_place_the_source() -> None:
    expected = {
        "center": (32, 16),
        "left": (0, 16),
        "right": (64, 16),
        "top": (32, 0),
        "bottom": (32, 32),
        "top-left": (0, 0),
        "bottom-right": (64, 32),
    }
    for anchor, offset in expected.items():
        assert anchor_offset((64, 32), (128, 64), anchor) == offset
    assert set(expected) <= set(ANCHORS)


def test_expand_canvas_keeps_the_source_and_masks_only_the_new_area() -> None:
    source = _noise((32, 32), 1)
    canvas, mask, (left, top) = expand_canvas(source, (64, 48), "bottom-right")
    assert (left, top) == (32, 16) and canvas.size == (64, 48)
    assert np.array_equal(np.asarray(canvas.crop((32, 16, 64, 48))), np.asarray(source))
    values = np.asarray(mask)
    assert not values[16:, 32:].any() and (values[:16] == 255).all() and (values[:, :32] == 255).all()
    with pytest.raises(ValidationError, match="size: 16x48 is smaller than the image"):
        expand_canvas(source, (16, 48), "center")
    with pytest.raises(ValidationError, match="size: the image is already 32x32"):
        expand_canvas(source, (32, 32), "center")


def test_pipeline_mask_grows_to_whole_latent_cells() -> None:
    mask = _box_mask((32, 32), (9, 9, 9, 9))  # one pixel
    assert np.asarray(pipeline_mask(mask, 0, 8)).sum() == 64 * 255  # its 8x8 cell
    grown = np.asarray(pipeline_mask(mask, 2, 4)) >= 128  # 5x5 around it touches 2x2 cells of 4
    assert grown.sum() == 64 and grown[4:12, 4:12].all()


@pytest.mark.parametrize("blur", [0, 4])
def test_composite_keeps_every_pixel_outside_the_mask(blur: int) -> None:
    source, generated = _noise((32, 32), 2), _noise((32, 32), 3)
    mask = _box_mask((32, 32), (8, 8, 23, 23))
    alpha = composite_alpha(mask, blur)
    out = np.asarray(composite(source, generated, alpha))
    outside = np.asarray(mask) < 128
    assert np.array_equal(out[outside], np.asarray(source)[outside])
    assert np.array_equal(out[15:17, 15:17], np.asarray(generated)[15:17, 15:17])  # deep inside: generated
    if blur:
        assert 0.0 < alpha[8, 15] < 1.0  # a soft edge inside the painted mask


def test_tiles_cover_the_picture_and_blend_back_exactly() -> None:
    boxes = tile_boxes((256, 128), 128, 16)
    covered = np.zeros((128, 256), dtype=bool)
    for box in boxes:
        assert (box.width, box.height) == (128, 128)
        covered[box.top : box.top + box.height, box.left : box.left + box.width] = True
    assert covered.all() and len(boxes) == 3
    picture = _noise((256, 128), 4)
    tiles = ((box, picture.crop((box.left, box.top, box.left + 128, box.top + 128))) for box in boxes)
    assert np.array_equal(np.asarray(blend_tiles((256, 128), tiles, 16)), np.asarray(picture))
    assert len(tile_boxes((64, 64), 128, 16)) == 1


def test_keep_colours_lays_the_detail_over_the_reference_colours() -> None:
    reference = Image.new("RGB", (64, 64), (200, 40, 40))
    stripes = np.zeros((64, 64, 3), dtype=np.uint8)
    stripes[:, ::2] = (60, 60, 200)  # a colour drift plus one-pixel detail
    stripes[:, 1::2] = (40, 40, 180)
    kept = np.asarray(keep_colours(reference, Image.fromarray(stripes, "RGB"), 4.0)).astype(int)
    assert np.abs(kept.reshape(-1, 3).mean(axis=0) - (200, 40, 40)).max() < 1.0
    assert (kept[:, ::2] - kept[:, 1::2]).mean() > 15  # the stripes are still there
    picture = Image.fromarray(stripes, "RGB")
    assert keep_colours(reference, picture, 0) is picture  # 0: off
