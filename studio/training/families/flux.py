"""FLUX.1: latents packed into 2×2 patches, T5 tokens + pooled CLIP, the guidance embedding (dev), flow
matching with uniform timesteps (diffusers' FLUX LoRA example's default)."""

from __future__ import annotations

from typing import ClassVar

import torch

from studio.training.families.flow import FlowMatchingTrainer
from studio.training.trainer import Batch


class FluxTrainer(FlowMatchingTrainer):
    """Transformer LoRA on a FLUX pipeline."""

    families = ("flux",)
    pipeline_class = "FluxPipeline"
    denoiser_name = "transformer"
    takes_negative_embeds = False
    weighting_scheme = "none"
    #: the distilled guidance a guidance-embedding (dev) model is trained at; 1.0 as kohya and ai-toolkit do
    train_guidance: ClassVar[float] = 1.0

    def encode_caption_batch(self, captions: list[str]) -> dict[str, torch.Tensor]:
        """Captions → T5 ``embeds`` (N, L, D) and CLIP ``pooled`` (N, P), as the pipeline makes them."""
        out = self.pipe.encode_prompt(captions, captions, device=self.device)
        return {"embeds": out[0], "pooled": out[1]}

    def predict(self, noisy: torch.Tensor, timesteps: torch.Tensor, batch: Batch) -> torch.Tensor:
        from diffusers import FluxPipeline

        size, channels, height, width = noisy.shape
        embeds = batch.cond["embeds"].to(self.device, self.weight_dtype)
        guidance = None
        if self.denoiser.config.guidance_embeds:
            guidance = torch.full((size,), self.train_guidance, device=self.device, dtype=torch.float32)
        packed = FluxPipeline._pack_latents(noisy, size, channels, height, width)
        pred = self.denoiser(
            hidden_states=packed,
            timestep=timesteps / 1000,
            guidance=guidance,
            pooled_projections=batch.cond["pooled"].to(self.device, self.weight_dtype),
            encoder_hidden_states=embeds,
            txt_ids=torch.zeros(embeds.shape[1], 3, device=self.device, dtype=self.weight_dtype),
            img_ids=FluxPipeline._prepare_latent_image_ids(
                size, height // 2, width // 2, self.device, self.weight_dtype
            ),
            return_dict=False,
        )[0]
        scale = self.pipe.vae_scale_factor
        return FluxPipeline._unpack_latents(pred, height * scale, width * scale, scale)
