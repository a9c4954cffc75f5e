"""SDXL: two text encoders (penultimate states concatenated), the pooled embedding, and ``add_time_ids``.

``add_time_ids`` are each image's original size, crop top-left and target size, as SDXL was trained; the
bucket plan records them (:mod:`studio.training.buckets`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from studio.training.families.sd import SDTrainer
from studio.training.trainer import Batch


class SDXLTrainer(SDTrainer):
    """UNet LoRA on an SDXL pipeline: SD's noise and target, SDXL's conditioning."""

    families = ("sdxl",)
    pipeline_class = "StableDiffusionXLPipeline"

    @torch.no_grad()
    def encode_prompts(self, captions: Sequence[str]) -> dict[str, torch.Tensor]:
        """Captions → ``embeds`` (N, L, D1+D2) and ``pooled`` (N, P), with the pipeline's own encoder."""
        embeds, pooled = [], []
        for start in range(0, len(captions), 64):
            chunk = list(captions[start : start + 64])
            out = self.pipe.encode_prompt(chunk, device=self.device, do_classifier_free_guidance=False)
            embeds.append(out[0].float().cpu())
            pooled.append(out[2].float().cpu())
        return {"embeds": torch.cat(embeds), "pooled": torch.cat(pooled)}

    def unet_kwargs(self, batch: Batch) -> dict[str, Any]:
        """``text_embeds`` (pooled) and ``time_ids`` = original (h, w), crop (top, left), target (h, w)."""
        return {
            "added_cond_kwargs": {
                "text_embeds": batch.cond["pooled"].to(self.device, self.weight_dtype),
                "time_ids": batch.geometry.to(self.device, self.weight_dtype),
            }
        }
