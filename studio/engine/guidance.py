"""Sampling-time guidance beyond plain CFG, for every model family: rescale, APG, CFG-Zero★, thresholding.

Classic diffusers pipelines combine the two predictions inline (``uncond + w·(cond − uncond)``). Rather than
copy each pipeline, :func:`guided` puts a forward hook on the pipeline's denoiser (``unet`` or
``transformer``) for one call and does the combination itself:

- **paired** calls (SD 1/2, SDXL, SD3 and their ControlNet pipelines): the denoiser sees ``[uncond, cond]``
  in one batch. The hook computes the guided prediction ``g`` and returns ``[g, g]``, so the pipeline's own
  ``g + w·(g − g)`` is exactly ``g``.
- **sequential** calls (FLUX with true CFG: the conditional call, then the unconditional one, at the same
  timestep): the hook keeps the first output and answers the second with ``n = (g − w·c) / (1 − w)``, so the
  pipeline's ``n + w·(c − n)`` is ``g``. A FLUX call without a negative prompt makes one call per step: its
  ``guidance_scale`` is distilled guidance and nothing is changed.

Methods (``Guidance.method``):

- ``cfg``: plain CFG, plus guidance rescale φ (Lin et al. 2023, "Common Diffusion Noise Schedules and Sample
  Steps are Flawed", §3.4) when ``rescale > 0``: the guided prediction's standard deviation is matched to the
  conditional one's and mixed back by φ. In the model's prediction space, as diffusers' ``guidance_rescale``.
- ``apg``: adaptive projected guidance (Sadat et al. 2024, "Eliminating Oversaturation and Artifacts of High
  Guidance Scales in Diffusion Models"), on the denoised prediction ``x0``: the update ``Δ = x0_c − x0_u``
  runs through a momentum buffer (``Δ ← Δ + β·Δ_prev``, β = ``apg_momentum``, negative in the paper), is cut
  to the L2 norm ``apg_norm_threshold`` (0 = no cut) per image, and split into its part parallel to
  ``x0_c`` and the part orthogonal to it; ``x0 = x0_c + (w − 1)·(Δ⊥ + η·Δ∥)`` (η = ``apg_eta``, 0 drops the
  parallel part, which is what oversaturates).
- ``cfg-zero-star``: CFG-Zero★ (Fan et al. 2025): the unconditional prediction is scaled by the optimised
  ``s* = ⟨c, u⟩ / ‖u‖²`` (per image, in the prediction space) before guidance, and the first
  ``zero_init_steps`` steps predict zero. ``optimized_scale=True`` applies the same ``s*`` before any other
  method.
- ``fdg``: frequency-decoupled guidance (Sadat et al. 2025, "Guidance in the Frequency Domain Enables
  High-Fidelity Sampling at Low CFG Scales") in two bands: the low band is each latent channel's spatial mean
  (the image's overall colour cast), guided at ``fdg_low_scale``; the rest at the CFG scale. Linear, so the
  same in the prediction space as in ``x0``.
- ``threshold``: dynamic thresholding in the style of sd-dynamic-thresholding's "mimic scale": the guided
  ``x0`` is clipped, per image and channel around its mean, at its ``threshold_percentile`` of absolute
  deviation and rescaled so that this percentile matches the one of the conditional ``x0`` (CFG 1).

Every method can be limited to a window of the steps (``start`` ≤ step / steps < ``stop``, as diffusers'
guiders count them; Kynkäänniemi et al. 2024, "Applying Guidance in a Limited Interval Improves Sample and
Distribution Quality in Diffusion Models"): outside it the conditional prediction is used alone (CFG 1).

Denoised predictions ``x0`` come from the denoiser's input ``x_t`` and output ``p``, affine in ``p``:
variance-preserving models (SD 1/2, SDXL) ``x_t = √ᾱ·x0 + √(1−ᾱ)·ε`` with ᾱ from the scheduler's
``alphas_cumprod`` at the call's timestep (any VP sampler feeds the denoiser ``x_t`` in this form);
flow-matching models (SD3, FLUX) ``x_t = (1−σ)·x0 + σ·ε`` with σ the scheduler's current sigma.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from studio.engine.guidance_settings import METHODS, PLAIN, Guidance  # noqa: F401 (re-exported)
from studio.errors import ValidationError


class _Space:
    """Maps a denoiser output to the denoised ``x0`` and back: ``x0 = a·x_t + b·p``."""

    def __init__(self, pipe: Any, flow: bool) -> None:
        self.pipe, self.flow = pipe, flow

    def coefficients(self, sample: torch.Tensor, timestep: Any) -> tuple[float, float]:
        sched = self.pipe.scheduler
        if self.flow:
            index = sched.step_index if sched.step_index is not None else (sched.begin_index or 0)
            sigma = float(sched.sigmas[index])
            return 1.0, -sigma
        t = float(torch.as_tensor(timestep).flatten()[0])
        acp = sched.alphas_cumprod.double()
        lo = min(int(math.floor(t)), len(acp) - 1)
        hi = min(lo + 1, len(acp) - 1)
        alpha_bar = float(acp[lo] + (acp[hi] - acp[lo]) * (t - lo))
        kind = sched.config.get("prediction_type", "epsilon")
        root_a, root_1a = math.sqrt(alpha_bar), math.sqrt(max(1.0 - alpha_bar, 0.0))
        if kind == "v_prediction":
            return root_a, -root_1a
        if kind == "sample":
            return 0.0, 1.0
        root_a = max(root_a, 1e-4)  # epsilon prediction is undefined at zero SNR; keep it finite
        return 1.0 / root_a, -root_1a / root_a


def _spatial_dims(x: torch.Tensor) -> tuple[int, ...]:
    """Latents (batch, channel, height, width) -> (2, 3); FLUX's packed (batch, tokens, channel) -> (1,)."""
    return (2, 3) if x.ndim == 4 else (1,)


def _rescale(guided: torch.Tensor, cond: torch.Tensor, phi: float) -> torch.Tensor:
    dims = list(range(1, guided.ndim))
    std_cond = cond.std(dim=dims, keepdim=True)
    std_guided = guided.std(dim=dims, keepdim=True).clamp_min(1e-12)
    return phi * guided * (std_cond / std_guided) + (1.0 - phi) * guided


class _Combiner:
    """The per-call state (momentum buffer, step count) and the arithmetic of each method."""

    def __init__(self, guidance: Guidance, scale: float, space: _Space) -> None:
        self.g, self.scale, self.space = guidance, scale, space
        self.momentum: torch.Tensor | None = None
        self.step = 0
        self.last_t: float | None = None

    def __call__(
        self, cond: torch.Tensor, uncond: torch.Tensor, sample: torch.Tensor, timestep: Any
    ) -> torch.Tensor:
        t = float(torch.as_tensor(timestep).flatten()[0])
        if self.last_t is not None and t >= self.last_t:  # timesteps only fall within one pipeline call
            self.momentum, self.step = None, 0
        self.last_t = t
        step, self.step = self.step, self.step + 1
        total = int(getattr(self.space.pipe, "_num_timesteps", 0) or 0)
        if total and not int(self.g.start * total) <= step < int(self.g.stop * total):
            return cond  # outside the guidance window: the conditional prediction alone (CFG 1)
        dtype = cond.dtype  # the arithmetic in float64: x0 = a·x_t + b·p and back loses digits in float32
        cond, uncond, sample = cond.double(), uncond.double(), sample.double()
        return self._combine(cond, uncond, sample, timestep, step).to(dtype)

    def _combine(
        self, cond: torch.Tensor, uncond: torch.Tensor, sample: torch.Tensor, timestep: Any, step: int
    ) -> torch.Tensor:
        g, w = self.g, self.scale
        if g.method == "cfg-zero-star" and step < g.zero_init_steps:
            return torch.zeros_like(cond)
        if g.method == "cfg-zero-star" or g.optimized_scale:
            flat_c, flat_u = cond.flatten(1), uncond.flatten(1)
            s = (flat_c * flat_u).sum(1) / (flat_u * flat_u).sum(1).clamp_min(1e-12)
            uncond = uncond * s.view(-1, *([1] * (cond.ndim - 1)))
        if g.method in ("cfg", "cfg-zero-star"):
            guided = uncond + w * (cond - uncond)
        elif g.method == "fdg":
            delta = cond - uncond
            low = delta.mean(dim=_spatial_dims(delta), keepdim=True)
            guided = cond + (w - 1.0) * (delta - low) + (g.fdg_low_scale - 1.0) * low
        else:
            a, b = self.space.coefficients(sample, timestep)
            if b == 0.0:
                return uncond + w * (cond - uncond)
            x_c = a * sample + b * cond
            x_u = a * sample + b * uncond
            x0 = self._apg(x_c, x_u) if g.method == "apg" else self._threshold(x_c, x_u)
            guided = (x0 - a * sample) / b
        if g.rescale > 0.0:
            guided = _rescale(guided, cond, g.rescale)
        return guided

    def _apg(self, x_c: torch.Tensor, x_u: torch.Tensor) -> torch.Tensor:
        g, dims = self.g, list(range(1, x_c.ndim))
        delta = x_c - x_u
        if g.apg_momentum != 0.0:
            if self.momentum is not None:
                delta = delta + g.apg_momentum * self.momentum
            self.momentum = delta
        if g.apg_norm_threshold > 0.0:
            norm = delta.norm(p=2, dim=dims, keepdim=True).clamp_min(1e-12)
            delta = delta * torch.clamp(g.apg_norm_threshold / norm, max=1.0)
        unit = torch.nn.functional.normalize(x_c.flatten(1), dim=1).view_as(delta)
        parallel = (delta * unit).sum(dim=dims, keepdim=True) * unit
        update = (delta - parallel) + g.apg_eta * parallel
        return x_c + (self.scale - 1.0) * update

    def _threshold(self, x_c: torch.Tensor, x_u: torch.Tensor) -> torch.Tensor:
        x0 = x_u + self.scale * (x_c - x_u)
        flat, ref = x0.flatten(2), x_c.flatten(2)  # (batch, channel, pixels)
        mean, ref_mean = flat.mean(2, keepdim=True), ref.mean(2, keepdim=True)
        q = self.g.threshold_percentile
        s = torch.quantile((flat - mean).abs(), q, dim=2, keepdim=True).clamp_min(1e-6)
        s_ref = torch.quantile((ref - ref_mean).abs(), q, dim=2, keepdim=True)
        out = mean + (flat - mean).clamp(-s, s) * torch.clamp(s_ref / s, max=1.0)
        return out.view_as(x0)


def _denoiser(pipe: Any) -> torch.nn.Module:
    for name in ("unet", "transformer"):
        module = getattr(pipe, name, None)
        if module is not None:
            return module
    raise ValidationError("guidance", f"{type(pipe).__name__} has no unet or transformer to guide")


@contextmanager
def guided(pipe: Any, guidance: Guidance, scale: float, flow: bool | None = None) -> Iterator[None]:
    """Within the block, ``pipe``'s CFG combination follows ``guidance`` (at CFG ``scale``).

    Pass the same ``scale`` as the pipeline's ``guidance_scale`` (FLUX: its ``true_cfg_scale``). ``flow``:
    flow-matching model (default: read from the scheduler's class name). Plain CFG installs nothing.
    """
    if guidance.is_plain or scale <= 1.0:
        yield
        return
    if flow is None:
        flow = type(pipe.scheduler).__name__.startswith("FlowMatch")
    combiner = _Combiner(guidance, float(scale), _Space(pipe, flow))
    pending: dict[str, Any] = {}

    def hook(module: Any, args: tuple, kwargs: dict, output: Any) -> Any:
        sample = kwargs.get("sample", kwargs.get("hidden_states", args[0] if args else None))
        timestep = kwargs.get("timestep", args[1] if len(args) > 1 else None)
        pred = output[0] if isinstance(output, tuple) else output.sample
        paired = getattr(pipe, "do_classifier_free_guidance", False) and pred.shape[0] % 2 == 0
        if paired:
            uncond, cond = pred.chunk(2)
            x_t = sample.chunk(2)[1]
            result = combiner(cond, uncond, x_t, timestep).repeat(2, *([1] * (pred.ndim - 1)))
        else:
            key = float(torch.as_tensor(timestep).flatten()[0])
            if pending.get("t") != key:  # the conditional call of FLUX true CFG (or a lone call)
                pending.update(t=key, cond=pred)
                return output
            cond = pending.pop("cond")
            pending.pop("t")
            g = combiner(cond, pred, sample, timestep)
            result = (g - scale * cond) / (1.0 - scale)
        result = result.to(pred.dtype)
        if isinstance(output, tuple):
            return (result, *output[1:])
        output.sample = result
        return output

    handle = _denoiser(pipe).register_forward_hook(hook, with_kwargs=True)
    try:
        yield
    finally:
        handle.remove()
