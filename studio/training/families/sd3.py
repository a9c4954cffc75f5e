"""Stable Diffusion 3/3.5: the MMDiT transformer, three text encoders (two CLIP + T5), flow matching."""

from __future__ import annotations

import torch

from studio.training.families.flow import FlowMatchingTrainer
from studio.training.trainer import Batch


class SD3Trainer(FlowMatchingTrainer):
    """Transformer LoRA on an SD3 pipeline; timesteps logit-normal as in diffusers' SD3 LoRA example."""

    families = ("sd3",)
    pipeline_class = "StableDiffusion3Pipeline"
    denoiser_name = "transformer"
    weighting_scheme = "logit_normal"

    def encode_caption_batch(self, captions: list[str]) -> dict[str, torch.Tensor]:
        """Captions → ``embeds`` (CLIP and T5 tokens, joined) and ``pooled`` (both CLIPs), as the pipeline."""
        out = self.pipe.encode_prompt(
            captions, captions, captions, device=self.device, do_classifier_free_guidance=False
        )
        return {"embeds": out[0], "pooled": out[2]}

    def predict(self, noisy: torch.Tensor, timesteps: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.denoiser(
            hidden_states=noisy,
            timestep=timesteps,
            encoder_hidden_states=batch.cond["embeds"].to(self.device, self.weight_dtype),
            pooled_projections=batch.cond["pooled"].to(self.device, self.weight_dtype),
            return_dict=False,
        )[0]
