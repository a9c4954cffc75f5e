"""A run's resumable state: the LoRA parameters and AdamW's moments, as a flat tensor dict (safetensors).

Keys are ``param::<name>``, ``exp_avg::<name>``, ``exp_avg_sq::<name>`` and ``step::<name>``. Restoring
them and drawing each step's batch from a generator seeded by (seed, step) makes a resumed run continue
exactly as one that never stopped. (bitsandbytes' 8-bit AdamW keeps other state: it resumes with fresh
moments.)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from studio.errors import ValidationError

Params = Sequence[tuple[str, torch.nn.Parameter]]


def training_state(params: Params, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """The parameters and their AdamW moments, on the CPU in fp32."""
    state: dict[str, torch.Tensor] = {}
    for name, param in params:
        state[f"param::{name}"] = param.detach().float().cpu().contiguous()
        opt = optimizer.state.get(param, {})
        for key in ("exp_avg", "exp_avg_sq", "step"):
            if key in opt:
                state[f"{key}::{name}"] = torch.as_tensor(opt[key]).detach().float().cpu().reshape(-1)
    return state


def restore_training_state(path: Path, params: Params, optimizer: torch.optim.Optimizer) -> None:
    """Load a state file into ``params`` and ``optimizer``; a file that does not fit is refused by name."""
    from safetensors.torch import load_file

    data = load_file(str(path))
    for name, param in params:
        key = f"param::{name}"
        if key not in data or data[key].shape != param.shape:
            raise ValidationError(str(path), f"does not match this LoRA ({name})")
        with torch.no_grad():
            param.copy_(data[key].to(param.device))
        if f"exp_avg::{name}" in data:
            optimizer.state[param] = {
                "exp_avg": data[f"exp_avg::{name}"].reshape(param.shape).to(param.device),
                "exp_avg_sq": data[f"exp_avg_sq::{name}"].reshape(param.shape).to(param.device),
                "step": data[f"step::{name}"].reshape(()).clone(),
            }
