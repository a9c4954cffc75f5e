"""Aspect-ratio buckets: plan where each training image goes, and fit it there (no torch here).

The buckets are kohya sd-scripts / SimpleTuner style: every (width, height) whose sides are multiples of
``multiple``, whose area is at most ``native**2`` and whose long side is at most ``max_ratio`` times the
short one. For each width from the square up, the height is the largest multiple that keeps the area within
``native**2``, and the set is symmetric (each landscape bucket has its portrait twin).

Each image goes to the bucket whose aspect ratio is nearest on a log scale. It is resized, aspect kept, to the
smallest size that covers the bucket (never squashed), and the overhang is cropped from the centre. The crop's
top-left corner is recorded in the resized image's pixels: SDXL's ``add_time_ids`` take it as
``crops_coords_top_left``, with ``original`` as ``original_size``.

The step between bucket sides (:func:`effective_multiple`) is ``multiple`` (64, as kohya), shrunk to
``native // 4`` for tiny models (a native-32 test model gets 8-px steps, the embedded 64-px model 16-px), then
rounded up to a multiple of ``model_multiple``: the size the model's VAE and denoiser require
(``studio.engine.models.size_multiple``), so every bucket is a size the model takes.

A dataset of square images gets one bucket, ``native × native`` (when ``native`` is a multiple of the step),
with no crop: the same as fitting every image to a native-sized square.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from studio.errors import ValidationError

if TYPE_CHECKING:  # PIL is imported when an image is fitted, not when a plan is made
    from PIL.Image import Image

#: Named ratios for the human summary (landscape form; portrait ones are the same flipped).
_RATIO_NAMES: tuple[tuple[int, int], ...] = ((1, 1), (5, 4), (4, 3), (3, 2), (5, 3), (16, 9), (2, 1))


@dataclass(frozen=True)
class Placement:
    """Where one image goes: its bucket, the size it is resized to (covering the bucket, aspect kept), the
    crop."""

    bucket: tuple[int, int]  # (width, height), multiples of `multiple`
    resized: tuple[int, int]  # (width, height) after the aspect-preserving resize (covers the bucket)
    crop_left: int
    crop_top: int
    original: tuple[int, int]  # (width, height) of the source image

    @property
    def crop_share(self) -> float:
        """The share of the resized image's pixels cut off by the crop (0 when it fits exactly)."""
        bw, bh = self.bucket
        rw, rh = self.resized
        return 1.0 - (bw * bh) / (rw * rh)


@dataclass(frozen=True)
class BucketPlan:
    """One placement per image, in dataset order, for a model of native side ``native``."""

    native: int  # the model's native side (area = native**2)
    placements: tuple[Placement, ...]  # one per image, dataset order

    def groups(self) -> dict[tuple[int, int], list[int]]:
        """Bucket → indices of its images, buckets in order of first appearance."""
        out: dict[tuple[int, int], list[int]] = {}
        for index, placement in enumerate(self.placements):
            out.setdefault(placement.bucket, []).append(index)
        return out

    @property
    def buckets(self) -> list[tuple[int, int]]:
        """The buckets in use, most images first (ties: widest first)."""
        groups = self.groups()
        return sorted(groups, key=lambda b: (-len(groups[b]), -b[0] / b[1], b))

    def max_crop_share(self, bucket: tuple[int, int] | None = None) -> float:
        """The largest crop share of any image (of one bucket, if given)."""
        shares = [p.crop_share for p in self.placements if bucket is None or p.bucket == bucket]
        return max(shares, default=0.0)

    def line(self, bucket: tuple[int, int]) -> str:
        """``"1216×832: 3 images (landscape 3:2), crop up to 4%"``: one bucket, for people."""
        count = len(self.groups().get(bucket, []))
        noun = "image" if count == 1 else "images"
        crop = self.max_crop_share(bucket)
        cropped = f"crop up to {crop:.0%}" if crop >= 0.005 else "no crop"
        return f"{bucket[0]}×{bucket[1]}: {count} {noun} ({ratio_label(*bucket)}), {cropped}"

    def summary(self) -> list[str]:
        """One human line per bucket (:meth:`line`), most images first."""
        return [self.line(bucket) for bucket in self.buckets]


def ratio_label(width: int, height: int) -> str:
    """``"square 1:1"``, ``"landscape 3:2"``, ``"portrait 9:16"``: the nearest named ratio."""
    if width == height:
        return "square 1:1"
    wide = width > height
    ratio = abs(math.log(max(width, height) / min(width, height)))
    a, b = min(_RATIO_NAMES[1:], key=lambda r: abs(math.log(r[0] / r[1]) - ratio))
    return f"landscape {a}:{b}" if wide else f"portrait {b}:{a}"


def effective_multiple(native: int, multiple: int = 64, model_multiple: int = 1) -> int:
    """The step between bucket sides: ``multiple``, shrunk to ``native // 4`` for tiny models, then rounded
    up to a multiple of ``model_multiple`` (what the model requires)."""
    if native < 8:
        raise ValidationError("native", f"the model's native side must be at least 8 px, not {native}")
    for field, value in (("multiple", multiple), ("model_multiple", model_multiple)):
        if value < 1:
            raise ValidationError(field, f"must be a positive number of pixels, not {value}")
    step = max(1, min(multiple, native // 4))
    return -(-step // model_multiple) * model_multiple


def bucket_sizes(native: int, multiple: int = 64, max_ratio: float = 2.0) -> list[tuple[int, int]]:
    """Buckets (width, height) with area at most ``native**2``, sides multiples of ``multiple`` and a long
    side at most ``max_ratio`` times the short one; the square first, then landscape/portrait pairs, widening.

    ``multiple`` is used as given here; :func:`plan_buckets` shrinks it for tiny models first.
    """
    if native < 1:
        raise ValidationError("native", f"must be a positive number of pixels, not {native}")
    if multiple < 1:
        raise ValidationError("multiple", f"must be a positive number of pixels, not {multiple}")
    if max_ratio < 1.0:
        raise ValidationError("max_ratio", f"must be at least 1, not {max_ratio}")
    area = native * native
    square = (native // multiple) * multiple
    if square < multiple:
        raise ValidationError("multiple", f"{multiple} px is larger than the model's native side {native} px")
    out: list[tuple[int, int]] = [(square, square)]
    width = square + multiple
    while True:
        height = (area // width) // multiple * multiple
        if height < multiple or width > max_ratio * height:
            break
        if (width, height) not in out:
            out += [(width, height), (height, width)]
        width += multiple
    return out


def _nearest(buckets: Sequence[tuple[int, int]], width: int, height: int) -> tuple[int, int]:
    """The bucket nearest in log aspect ratio; ties go to the larger area, then the first listed."""
    target = math.log(width / height)
    return min(buckets, key=lambda b: (abs(math.log(b[0] / b[1]) - target), -b[0] * b[1]))


def _cover(width: int, height: int, bucket: tuple[int, int]) -> tuple[int, int]:
    """The smallest size with the image's aspect (to a pixel) that covers ``bucket``."""
    bw, bh = bucket
    if width * bh >= height * bw:  # as wide as the bucket or wider: match heights
        return max(bw, round(width * bh / height)), bh
    return bw, max(bh, round(height * bw / width))


def place(size: tuple[int, int], buckets: Sequence[tuple[int, int]]) -> Placement:
    """Place one image of ``size`` (width, height) in the nearest of ``buckets``."""
    width, height = size
    bucket = _nearest(buckets, width, height)
    resized = _cover(width, height, bucket)
    return Placement(
        bucket=bucket,
        resized=resized,
        crop_left=(resized[0] - bucket[0]) // 2,
        crop_top=(resized[1] - bucket[1]) // 2,
        original=(width, height),
    )


def plan_buckets(
    sizes: Sequence[tuple[int, int]], native: int, multiple: int = 64, *, model_multiple: int = 1
) -> BucketPlan:
    """Place each image (``sizes`` are (width, height), dataset order) for a model of native side ``native``.

    The step between bucket sides is ``min(multiple, native // 4)`` rounded up to a multiple of
    ``model_multiple``, the size multiple the model requires (:func:`effective_multiple`).
    """
    for index, size in enumerate(sizes):
        if len(size) != 2 or int(size[0]) < 1 or int(size[1]) < 1:
            raise ValidationError(
                f"sizes[{index}]", f"expected a positive (width, height), not {tuple(size)}"
            )
    buckets = bucket_sizes(native, effective_multiple(native, multiple, model_multiple))
    return BucketPlan(native=native, placements=tuple(place((int(w), int(h)), buckets) for w, h in sizes))


def fit_image(image: Image, placement: Placement) -> Image:
    """Resize ``image`` (bicubic, aspect kept) to ``placement.resized``; crop it to ``placement.bucket``."""
    if image.size != placement.original:
        raise ValidationError(
            "image", f"is {image.size[0]}×{image.size[1]}, but was planned as "
            f"{placement.original[0]}×{placement.original[1]}"
        )  # fmt: skip
    from PIL.Image import Resampling

    resized = image.resize(placement.resized, Resampling.BICUBIC)
    left, top = placement.crop_left, placement.crop_top
    width, height = placement.bucket
    return resized.crop((left, top, left + width, top + height))


def bucket_batches(plan: BucketPlan, batch_size: int, seed: int) -> list[list[int]]:
    """One epoch of batches, each from a single bucket: images shuffled within buckets, then the batches
    shuffled, all from ``seed`` (the same seed gives the same order, so a resumed run sees the same batches).
    The last batch of a bucket may be short."""
    if batch_size < 1:
        raise ValidationError("batch_size", f"must be at least 1, not {batch_size}")
    rng = random.Random(seed)
    batches: list[list[int]] = []
    groups = plan.groups()
    for bucket in sorted(groups):
        indices = list(groups[bucket])
        rng.shuffle(indices)
        batches += [indices[i : i + batch_size] for i in range(0, len(indices), batch_size)]
    rng.shuffle(batches)
    return batches
