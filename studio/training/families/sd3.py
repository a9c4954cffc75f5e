"""Stable Diffusion 3/3.5: the MMDiT transformer, three text encoders (two CLIP + T5), flow matching."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from studio.training.families.flow import FlowMatchingTrainer
from studio.training.trainer import Batch


class SD3Trainer(FlowMatchingTrainer):
    """Transformer LoRA on an SD3 pipeline; timesteps logit-normal as in diffusers' SD3 LoRA example."""

    families = ("sd3",)
    pipeline_class = "StableDiffusion3Pipeline"
    denoiser_name = "transformer"
    weighting_scheme = "logit_normal"

    @torch.no_grad()
    def encode_prompts(self, captions: Sequence[str]) -> dict[str, torch.Tensor]:
        """Captions → ``embeds`` (CLIP and T5 tokens, joined) and ``pooled`` (both CLIPs), as the pipeline."""
        embeds, pooled = [], []
        for start in range(0, len(captions), 64):
            chunk = list(captions[start : start + 64])
            out = self.pipe.encode_prompt(
                chunk, chunk, chunk, device=self.device, do_classifier_free_guidance=False
            )
            embeds.append(out[0].float().cpu())
            pooled.append(out[2].float().cpu())
        return {"embeds": torch.cat(embeds), "pooled": torch.cat(pooled)}

    def predict(self, noisy: torch.Tensor, timesteps: torch.Tensor, batch: Batch) -> torch.Tensor:
        return self.denoiser(
            hidden_states=noisy,
            timestep=timesteps,
            encoder_hidden_states=batch.cond["embeds"].to(self.device, self.weight_dtype),
            pooled_projections=batch.cond["pooled"].to(self.device, self.weight_dtype),
            return_dict=False,
        )[0]
