"""Batch-invariant kernels (issue 20, item 3): inside ``batch_invariant()`` a network's output for one input
does not depend on the other inputs of its batch, to the last bit; outside it, nothing changes."""

from __future__ import annotations

import torch
from torch import nn

from studio.engine.batch_invariant import batch_invariant


class _Net(nn.Module):
    """Convolutions, group norm, linear layers on 2-D and 3-D inputs and attention: what a UNet is made of."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 32, 3, padding=1)
        self.norm = nn.GroupNorm(8, 32)
        self.up = nn.ConvTranspose2d(32, 32, 2, stride=2)
        self.time = nn.Linear(16, 32)
        self.proj = nn.Linear(32, 64)
        self.attn = nn.MultiheadAttention(64, 4, batch_first=True)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.norm(self.conv(x)) + self.time(t)[:, :, None, None]
        h = self.up(torch.nn.functional.silu(h))
        tokens = self.proj(h.flatten(2).transpose(1, 2))
        return self.attn(tokens, tokens, tokens, need_weights=False)[0]


def test_each_output_is_the_same_alone_or_in_a_batch_of_sixteen() -> None:
    torch.manual_seed(0)
    net = _Net().eval()
    x, t = torch.randn(16, 4, 16, 16), torch.randn(16, 16)
    with torch.no_grad(), batch_invariant():
        batched = net(x, t)
        alone = torch.cat([net(x[i : i + 1], t[i : i + 1]) for i in range(16)])
        pair = net(x[3:5], t[3:5])  # a CFG-sized batch of two
    assert torch.equal(batched, alone)
    assert torch.equal(pair, alone[3:5])


def test_the_results_match_the_plain_kernels_closely_and_disabled_changes_nothing() -> None:
    torch.manual_seed(1)
    net = _Net().eval()
    x, t = torch.randn(4, 4, 8, 8), torch.randn(4, 16)
    with torch.no_grad():
        plain = net(x, t)
        with batch_invariant(enabled=False):
            assert torch.equal(net(x, t), plain)
        with batch_invariant():
            invariant = net(x, t)
    torch.testing.assert_close(invariant, plain, rtol=1e-4, atol=1e-5)


def test_on_one_thread_too_and_the_cpu_chunks_hold_here() -> None:
    """The CPU path (at most 8 images per convolution, one image doubled) is what this machine runs: its
    check passes here, and a net's outputs stay batch-invariant with one thread as with two."""
    from studio.engine.batch_invariant import cpu_chunks_hold

    assert cpu_chunks_hold(), "this CPU's oneDNN convolutions changed: the image-by-image fallback runs"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        test_each_output_is_the_same_alone_or_in_a_batch_of_sixteen()
    finally:
        torch.set_num_threads(threads)
