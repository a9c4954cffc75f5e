"""Flow matching, shared by SD3 and FLUX: noisy = (1 − σ)·x + σ·ε, target ε − x.

Timesteps are drawn as diffusers' SD3 and FLUX LoRA examples draw them
(``compute_density_for_timestep_sampling``: logit-normal, mode or uniform) from the pipeline's own
flow-matching scheduler (its shift included); the loss is weighted by ``compute_loss_weighting_for_sd3``.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch

from studio.training.trainer import LoraTrainer


class FlowMatchingTrainer(LoraTrainer):
    """The noise and target hooks of the flow-matching families; VAE latents are shifted, then scaled."""

    #: ``logit_normal`` (SD3's example default), ``mode``, ``cosmap`` or ``none`` (uniform)
    weighting_scheme: ClassVar[str] = "logit_normal"

    def make_noise_scheduler(self) -> Any:
        return copy.deepcopy(self.pipe.scheduler)

    def latents_from_posterior(self, mean: torch.Tensor) -> torch.Tensor:
        config = self.pipe.vae.config
        return (mean - (config.shift_factor or 0.0)) * config.scaling_factor

    def noisy_input_and_target(
        self, latents: torch.Tensor, noise: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        from diffusers.training_utils import (
            compute_density_for_timestep_sampling,
            compute_loss_weighting_for_sd3,
        )

        sched = self.noise_scheduler
        u = compute_density_for_timestep_sampling(
            weighting_scheme=self.weighting_scheme, batch_size=latents.shape[0], logit_mean=0.0,
            logit_std=1.0, mode_scale=1.29, generator=gen,
        )  # fmt: skip
        indices = (u * sched.config.num_train_timesteps).long().clamp(max=len(sched.timesteps) - 1)
        timesteps = sched.timesteps[indices].to(self.device)
        sigmas = sched.sigmas[indices].to(self.device, torch.float32)
        sigmas = sigmas.view(-1, *([1] * (latents.ndim - 1)))
        noisy = (1.0 - sigmas) * latents + sigmas * noise
        weighting = compute_loss_weighting_for_sd3(weighting_scheme=self.weighting_scheme, sigmas=sigmas)
        return noisy, timesteps, noise - latents, weighting
