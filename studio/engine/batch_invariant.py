"""Batch-invariant kernels: an image's pixels do not depend on which other images share its batch.

A batched pipeline call is only worth having if image *i* of a batch of 8 is the same, to the last bit, as
image *i* made alone (its own seed, its own generator): otherwise a recipe would not make its image again.
Diffusers gives each image its own noise, but the kernels underneath are not batch-invariant: a matrix
multiply of 8·T rows picks another blocking than one of T rows, and oneDNN's convolutions another algorithm
for another batch size, so results differ in the last float bits (measured on the embedded model: up to
5e-6 after 20 steps, which moves a few pixels by one level).

Within :func:`batch_invariant`:

- ``F.linear`` runs as a batched matrix multiply (``baddbmm``) with one matrix per image: every image's
  rows go through a multiply of the same shape, whatever the batch (a 2-D input counts one row per image);
- 2-D convolutions: on the CPU, oneDNN gives each image the same result in any call of 2 to 8 images but
  another with one image alone (and, for some 1x1 convolutions, from 16 on): so calls hold at most 8
  images and one image alone runs doubled (:func:`cpu_chunks_hold` checks this once per process and falls
  back to image by image); on other devices, whose libraries choose algorithms by batch size, image by
  image.

Normalisation, attention (per image and head), the schedulers and the guidance arithmetic are per image
already. The price is paid alone: on this 2-core CPU a worker makes 2.9 embedded-model images/s one per call
on these kernels against 3.6 on the plain ones, and 8.5 in batches of 8 (``benchmarks/batch_throughput.py``).
So the engine uses them only when asked (``STUDIO_BATCH_INVARIANT``; by default where workers batch) and a
recipe records which kernels made it. Checked by ``tests/unit/test_batch_invariant.py`` and, for whole
pipelines, by the batching tests; on a GPU ``benchmarks/batch_throughput.py`` compares the pixels (not
measured yet).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    if x.ndim < 2:
        return F.linear(x, weight, bias)
    rows = x.reshape(x.shape[0], -1, x.shape[-1])  # (images, rows per image, in)
    out_features = weight.shape[0]
    matrix = weight.t().unsqueeze(0).expand(rows.shape[0], -1, -1)
    if bias is None:
        out = torch.bmm(rows, matrix)
    else:
        out = torch.baddbmm(bias.view(1, 1, -1).expand(rows.shape[0], rows.shape[1], -1), rows, matrix)
    return out.reshape(*x.shape[:-1], out_features)


def _per_image(op: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    if x.ndim < 4 or x.shape[0] == 1:
        return op(x, *args, **kwargs)
    return torch.cat([op(x[i : i + 1], *args, **kwargs) for i in range(x.shape[0])])


def _cpu_chunks(op: Any, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    """oneDNN's CPU convolution gives each image the same result in any call of 2 to :data:`CPU_CHUNK`
    images (its one-image kernel differs): so at most that many per call, and one image alone runs as two."""
    if x.ndim < 4:
        return op(x, *args, **kwargs)
    if x.shape[0] == 1:
        return op(torch.cat([x, x]), *args, **kwargs)[:1]
    if x.shape[0] <= CPU_CHUNK:
        return op(x, *args, **kwargs)
    parts = list(torch.split(x, CPU_CHUNK))
    return torch.cat([_cpu_chunks(op, part, *args, **kwargs) for part in parts])


#: the most images per CPU convolution call: oneDNN's algorithm (and result) changed from 16 images on
#: for some 1x1 convolutions with one thread (measured, torch 2.14); 2-15 gave the same
CPU_CHUNK = 8


@functools.cache
def cpu_chunks_hold() -> bool:
    """Whether this CPU's convolutions give each image the same result in calls of 1 (doubled) to
    :data:`CPU_CHUNK` images, checked once on a few shapes (3x3, strided, 1x1); else convolutions run
    image by image, which always holds. Another CPU (instruction set, oneDNN version) may differ."""
    generator = torch.Generator().manual_seed(0)
    for channels, out, side, kernel, stride in ((4, 32, 16, 3, 1), (32, 32, 16, 3, 2), (64, 4, 8, 1, 1)):
        x = torch.randn(CPU_CHUNK, channels, side, side, generator=generator)
        weight = torch.randn(out, channels, kernel, kernel, generator=generator)
        conv = functools.partial(F.conv2d, weight=weight, stride=stride, padding=kernel // 2)
        alone = torch.cat([_cpu_chunks(conv, x[i : i + 1]) for i in range(CPU_CHUNK)])
        if not all(torch.equal(conv(x[:n]), alone[:n]) for n in range(2, CPU_CHUNK + 1)):
            return False
    return True


class _BatchInvariantMode(TorchFunctionMode):
    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is F.linear:
            return _linear(*args, **kwargs)
        if func in (F.conv2d, F.conv_transpose2d):
            x = args[0] if args else kwargs["input"]
            if x.device.type == "cpu" and torch.backends.mkldnn.is_available() and cpu_chunks_hold():
                return _cpu_chunks(func, *args, **kwargs)
            return _per_image(func, *args, **kwargs)
        return func(*args, **kwargs)


@contextmanager
def batch_invariant(enabled: bool = True) -> Iterator[None]:
    """Within the block, the current thread's linear layers and convolutions are batch-invariant (see the
    module's docstring); ``enabled=False`` changes nothing."""
    if not enabled:
        yield
        return
    with _BatchInvariantMode():
        yield
