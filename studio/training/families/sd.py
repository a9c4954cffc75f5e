"""Stable Diffusion 1.x/2.x and the embedded model: one CLIP text encoder, DDPM noise, epsilon or v target."""

from __future__ import annotations

from typing import Any

import torch

from studio.training.trainer import Batch, LoraTrainer


class SDTrainer(LoraTrainer):
    """UNet LoRA on an SD 1.x/2.x pipeline."""

    families = ("sd1", "sd2")
    pipeline_class = "StableDiffusionPipeline"
    denoiser_name = "unet"

    def make_noise_scheduler(self) -> Any:
        from diffusers import DDPMScheduler

        return DDPMScheduler.from_config(self.pipe.scheduler.config)

    def encode_caption_batch(self, captions: list[str]) -> dict[str, torch.Tensor]:
        """Captions → the text encoder's last hidden states, ``embeds`` (N, L, D)."""
        tok = self.pipe.tokenizer
        ids = tok(
            captions, padding="max_length", max_length=tok.model_max_length, truncation=True,
            return_tensors="pt",
        ).input_ids  # fmt: skip
        return {"embeds": self.pipe.text_encoder(ids.to(self.device))[0]}

    def noisy_input_and_target(
        self, latents: torch.Tensor, noise: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """DDPM: uniform timesteps, ``add_noise``; the target is the noise or the velocity (v-prediction)."""
        sched = self.noise_scheduler
        timesteps = torch.randint(0, sched.config.num_train_timesteps, (latents.shape[0],), generator=gen)
        timesteps = timesteps.to(self.device)
        noisy = sched.add_noise(latents, noise, timesteps)
        if sched.config.prediction_type == "v_prediction":
            return noisy, timesteps, sched.get_velocity(latents, noise, timesteps), None
        return noisy, timesteps, noise, None

    def predict(self, noisy: torch.Tensor, timesteps: torch.Tensor, batch: Batch) -> torch.Tensor:
        embeds = batch.cond["embeds"].to(self.device, self.weight_dtype)
        return self.denoiser(noisy, timesteps, embeds, **self.unet_kwargs(batch)).sample

    def unet_kwargs(self, batch: Batch) -> dict[str, Any]:
        """Extra UNet arguments (SDXL adds its size conditioning)."""
        return {}
