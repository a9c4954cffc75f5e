"""Aspect-ratio buckets (studio.training.buckets): mixed shapes, crops, tiny models, fit_image, batches."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from studio.errors import ValidationError
from studio.training.buckets import (
    BucketPlan,
    bucket_batches,
    bucket_sizes,
    effective_multiple,
    fit_image,
    plan_buckets,
)

# 3:2, 2:3, 1:1, 16:9 (and 9:16) at sizes around and below the native area
MIXED = [(1500, 1000), (1000, 1500), (800, 800), (1920, 1080), (1080, 1920), (3000, 2000), (600, 400)]


@pytest.mark.parametrize("native", [1024, 512])
def test_mixed_shapes_get_several_buckets_within_the_native_area(native: int) -> None:
    plan = plan_buckets(MIXED, native)
    assert isinstance(plan, BucketPlan) and plan.native == native
    assert len(plan.placements) == len(MIXED)
    groups = plan.groups()
    # landscape, portrait and square (at 1024 3:2 and 16:9 part too; 512's 64-px steps are coarser)
    assert len(groups) >= (5 if native == 1024 else 3)
    assert sorted(i for indices in groups.values() for i in indices) == list(range(len(MIXED)))
    for placement, (w, h) in zip(plan.placements, MIXED, strict=True):
        bw, bh = placement.bucket
        assert placement.original == (w, h)
        assert bw * bh <= native * native
        assert bw % 64 == 0 and bh % 64 == 0
        assert (bw > bh) == (w > h) and (bw == bh) == (w == h)  # orientation kept
        # the resize keeps the aspect (within a pixel of rounding) and covers the bucket
        rw, rh = placement.resized
        assert rw >= bw and rh >= bh and (rw == bw or rh == bh)
        assert abs(rw / rh - w / h) <= 1.0 / min(rw, rh) + 1e-9
        # the crop is centred and recorded
        assert placement.crop_left == (rw - bw) // 2 and placement.crop_top == (rh - bh) // 2
    # images of one shape share a bucket; the square one sits at native²
    assert plan.placements[0].bucket == plan.placements[5].bucket == plan.placements[6].bucket
    assert plan.placements[2].bucket == (native, native)
    assert plan.placements[1].bucket == plan.placements[0].bucket[::-1]


def test_known_buckets_at_1024_and_512() -> None:
    plan = plan_buckets([(1500, 1000), (1000, 1500), (1920, 1080)], 1024)
    assert [p.bucket for p in plan.placements] == [(1216, 832), (832, 1216), (1344, 768)]
    first = plan.placements[0]
    assert first.resized == (1248, 832) and (first.crop_left, first.crop_top) == (16, 0)
    assert plan.placements[1].resized == (832, 1248) and plan.placements[1].crop_top == 16
    assert plan_buckets([(1920, 1080)], 512).placements[0].bucket == (640, 384)
    assert plan.summary()[0].startswith("1344×768: 1 image (landscape 16:9)")
    assert any(line.startswith("1216×832: 1 image (landscape 3:2), crop up to 3%") for line in plan.summary())


def test_the_buckets_follow_kohya() -> None:
    sizes = bucket_sizes(1024)
    assert sizes[0] == (1024, 1024)
    for pair in [(1216, 832), (832, 1216), (1344, 768), (1408, 704)]:
        assert pair in sizes
    assert all(w * h <= 1024 * 1024 and w % 64 == 0 and h % 64 == 0 for w, h in sizes)
    assert all(max(w, h) <= 2 * min(w, h) for w, h in sizes)
    assert set(sizes) == {(h, w) for w, h in sizes}  # symmetric
    assert len(sizes) == len(set(sizes))


def test_a_square_dataset_keeps_one_native_bucket_and_no_crop() -> None:
    for native in (1024, 512, 64, 32):
        plan = plan_buckets([(800, 800), (2048, 2048), (40, 40)], native)
        assert list(plan.groups()) == [(native, native)]
        for placement in plan.placements:
            assert placement.resized == (native, native)
            assert (placement.crop_left, placement.crop_top, placement.crop_share) == (0, 0, 0.0)
        assert plan.summary() == [f"{native}×{native}: 3 images (square 1:1), no crop"]


def test_tiny_models_use_a_smaller_step_and_every_model_gets_sizes_it_takes() -> None:
    assert effective_multiple(1024) == 64 and effective_multiple(64) == 16 and effective_multiple(32) == 8
    # the model's own size multiple: SDXL 32, SD3 16, SD 1.5 64, tiny test models 2-4, a hypothetical 24
    assert [effective_multiple(1024, 64, m) for m in (32, 16, 64)] == [64, 64, 64]
    assert [effective_multiple(32, 64, m) for m in (2, 4)] == [8, 8]
    assert effective_multiple(64, 64, 24) == 24 and effective_multiple(1024, 64, 48) == 96
    plan = plan_buckets(MIXED, 1024, model_multiple=48)
    assert all(p.bucket[0] % 48 == 0 and p.bucket[1] % 48 == 0 for p in plan.placements)
    assert all(p.bucket[0] * p.bucket[1] <= 1024 * 1024 for p in plan.placements)
    plan = plan_buckets([(96, 64), (64, 96), (64, 64)], 64)
    assert [p.bucket for p in plan.placements] == [(80, 48), (48, 80), (64, 64)]
    assert all(p.bucket[0] % 16 == 0 and p.bucket[1] % 16 == 0 for p in plan.placements)
    tiny = plan_buckets([(96, 64), (64, 96)], 32)
    assert [p.bucket for p in tiny.placements] == [(40, 24), (24, 40)]


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ValidationError, match=r"sizes\[1\]"):
        plan_buckets([(10, 10), (0, 10)], 512)
    with pytest.raises(ValidationError, match="native"):
        plan_buckets([(10, 10)], 4)
    assert plan_buckets([], 512).placements == ()


def test_fit_image_gives_the_bucket_and_does_not_squash() -> None:
    # a 3:2 landscape with a centred circle: after fitting, the circle is still round
    width, height = 300, 200
    yy, xx = np.mgrid[0:height, 0:width]
    disc = (xx - width / 2) ** 2 + (yy - height / 2) ** 2 <= 60**2
    image = Image.fromarray(np.where(disc[..., None], 255, 0).astype(np.uint8).repeat(3, axis=2))
    placement = plan_buckets([(width, height)], 512).placements[0]
    assert placement.bucket == (640, 384)
    fitted = fit_image(image, placement)
    assert fitted.size == placement.bucket
    mask = np.asarray(fitted.convert("L")) > 127
    rows, cols = np.nonzero(mask)
    disc_w, disc_h = cols.max() - cols.min() + 1, rows.max() - rows.min() + 1
    assert abs(disc_w / disc_h - 1.0) < 0.03  # round, not stretched
    scale = placement.resized[1] / height
    assert math.isclose(disc_h, 121 * scale, rel_tol=0.03)
    assert abs((cols.min() + cols.max()) / 2 - placement.bucket[0] / 2) <= 1.5  # centred crop
    with pytest.raises(ValidationError, match="image"):
        fit_image(image.resize((100, 100)), placement)


def test_fit_image_on_a_square_matches_todays_fit() -> None:
    from PIL import ImageOps

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (100, 100, 3), dtype=np.uint8))
    placement = plan_buckets([image.size], 64).placements[0]
    fitted = fit_image(image, placement)
    today = ImageOps.fit(image, (64, 64), Image.Resampling.BICUBIC)
    assert np.array_equal(np.asarray(fitted), np.asarray(today))


def test_batches_hold_one_bucket_each_and_repeat_with_the_seed() -> None:
    plan = plan_buckets(MIXED * 3, 1024)
    batches = bucket_batches(plan, 2, seed=7)
    assert batches == bucket_batches(plan, 2, seed=7)
    assert sorted(i for batch in batches for i in batch) == list(range(len(MIXED) * 3))
    for batch in batches:
        assert len({plan.placements[i].bucket for i in batch}) == 1 and 1 <= len(batch) <= 2
