"""SDXL: two text encoders (penultimate states concatenated), the pooled embedding, and ``add_time_ids``.

``add_time_ids`` are each image's original size, crop top-left and target size, as SDXL was trained; the
bucket plan records them (:mod:`studio.training.buckets`).
"""

from __future__ import annotations

from typing import Any

import torch

from studio.training.families.sd import SDTrainer
from studio.training.trainer import Batch


class SDXLTrainer(SDTrainer):
    """UNet LoRA on an SDXL pipeline: SD's noise and target, SDXL's conditioning."""

    families = ("sdxl",)
    pipeline_class = "StableDiffusionXLPipeline"

    def encode_caption_batch(self, captions: list[str]) -> dict[str, torch.Tensor]:
        """Captions → ``embeds`` (N, L, D1+D2) and ``pooled`` (N, P), with the pipeline's own encoder."""
        out = self.pipe.encode_prompt(captions, device=self.device, do_classifier_free_guidance=False)
        return {"embeds": out[0], "pooled": out[2]}

    def unet_kwargs(self, batch: Batch) -> dict[str, Any]:
        """``text_embeds`` (pooled) and ``time_ids`` = original (h, w), crop (top, left), target (h, w)."""
        return {
            "added_cond_kwargs": {
                "text_embeds": batch.cond["pooled"].to(self.device, self.weight_dtype),
                "time_ids": batch.geometry.to(self.device, self.weight_dtype),
            }
        }
