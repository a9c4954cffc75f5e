"""One trainer per model family: the loop lives once in :class:`~studio.training.trainer.LoraTrainer`, and
each family overrides only its hooks (loading, caption and image encoding, noise and target, prediction).

========  ====================  =========================================================================
family    trainer               what differs
========  ====================  =========================================================================
sd1, sd2  :class:`SDTrainer`    one CLIP text encoder; DDPM noise, epsilon or v-prediction target
sdxl      :class:`SDXLTrainer`  two text encoders, pooled embedding, ``add_time_ids`` (size, crop, target)
sd3       :class:`SD3Trainer`   MMDiT, three text encoders, flow matching with logit-normal timesteps
flux      :class:`FluxTrainer`  packed latents, guidance embedding (dev), flow matching
========  ====================  =========================================================================
"""

from __future__ import annotations

from typing import Any

from studio.errors import ModelError
from studio.training.families.flux import FluxTrainer
from studio.training.families.sd import SDTrainer
from studio.training.families.sd3 import SD3Trainer
from studio.training.families.sdxl import SDXLTrainer
from studio.training.trainer import LoraTrainer

TRAINERS: tuple[type[LoraTrainer], ...] = (SDTrainer, SDXLTrainer, SD3Trainer, FluxTrainer)


def trainer_class(family: str) -> type[LoraTrainer]:
    """The trainer for a studio family; a ModelError names the family when none trains it."""
    for cls in TRAINERS:
        if family in cls.families:
            return cls
    raise ModelError(f"LoRA training does not support the {family} family")


def make_trainer(config: Any, items: Any, *, model: Any = None, **kwargs: Any) -> LoraTrainer:
    """The family's trainer for ``config.base_model``; ``model`` is its ResolvedModel when the caller has
    resolved it already (resolving hashes the folder), else it is resolved here. See :class:`LoraTrainer`
    for the other arguments."""
    from studio.engine.models import resolve_model

    model = model or resolve_model(config.base_model)
    trainer = trainer_class(model.family)(config, items, **kwargs)
    trainer.model = model
    return trainer


__all__ = [
    "TRAINERS", "FluxTrainer", "SD3Trainer", "SDTrainer", "SDXLTrainer", "make_trainer", "trainer_class",
]  # fmt: skip
