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
- each 2-D convolution runs image by image (oneDNN, cuDNN and PyTorch's own kernels choose their algorithm
  by batch size; PyTorch's own differs from batch 16 on).

Normalisation, attention (per image and head), the schedulers and the guidance arithmetic are per image
already. The price is paid alone: on this 2-core CPU one embedded-model image costs 1.2-1.4x the plain
kernels' time (``benchmarks/generation_overhead.py``), while a batch of 16 is 2.3x faster per image than
images alone (3.7x with the plain kernels, whose images would not be their recipes'). So the engine uses
them only when asked (``STUDIO_BATCH_INVARIANT``; by default where workers batch) and a recipe records
which kernels made it. Checked by ``tests/unit/test_batch_invariant.py`` and, for whole pipelines, by the
batching tests; on a GPU ``benchmarks/batch_throughput.py`` compares the pixels (not measured yet).
"""

from __future__ import annotations

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


class _BatchInvariantMode(TorchFunctionMode):
    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if func is F.linear:
            return _linear(*args, **kwargs)
        if func in (F.conv2d, F.conv_transpose2d):
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
