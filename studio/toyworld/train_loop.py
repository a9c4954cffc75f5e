"""The toy-world trainer's machinery: threads, EMA weights, resumable checkpoints (safetensors), the learning-
rate schedule and the work folder's build facts. Used by every stage of :mod:`studio.toyworld.train`.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def threaded_torch():
    import torch

    torch.set_num_threads(int(os.environ.get("TOYWORLD_THREADS", "2")))
    torch.set_flush_denormal(True)
    return torch


def images_to_tensor(arrs: list[np.ndarray]):
    torch = threaded_torch()
    x = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


class EMA:
    def __init__(self, params, decay: float):
        self.params = list(params)
        self.shadow = [p.detach().clone() for p in self.params]
        self.decay = decay

    def update(self, step: int) -> None:
        torch = threaded_torch()
        d = min(self.decay, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_mul_(self.shadow, d)
            torch._foreach_add_(self.shadow, [p.detach() for p in self.params], alpha=1 - d)

    def copy_to(self, params) -> None:
        torch = threaded_torch()
        with torch.no_grad():
            for s, p in zip(self.shadow, params, strict=True):
                p.copy_(s)


def save_state(path: Path, tensors: dict, meta: dict) -> None:
    from safetensors.torch import save_file

    tmp = path.with_suffix(".tmp")
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp), metadata={"meta": json.dumps(meta)})
    os.replace(tmp, path)


def load_state(path: Path) -> tuple[dict, dict]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["meta"])
    return load_file(str(path)), meta


def pack_training(model_params, ema: EMA, opt, prefix: str = "") -> dict:
    out = {}
    for i, p in enumerate(model_params):
        out[f"{prefix}p.{i}"] = p.detach()
    for i, s in enumerate(ema.shadow):
        out[f"{prefix}ema.{i}"] = s
    for i, p in enumerate(model_params):
        st = opt.state.get(p)
        if st:
            out[f"{prefix}m.{i}"] = st["exp_avg"]
            out[f"{prefix}v.{i}"] = st["exp_avg_sq"]
            out[f"{prefix}s.{i}"] = st["step"].reshape(1) if st["step"].dim() == 0 else st["step"]
    return out


def unpack_training(tensors: dict, model_params, ema: EMA, opt, prefix: str = "") -> None:
    torch = threaded_torch()
    with torch.no_grad():
        for i, p in enumerate(model_params):
            p.copy_(tensors[f"{prefix}p.{i}"])
            ema.shadow[i].copy_(tensors[f"{prefix}ema.{i}"])
            if f"{prefix}m.{i}" in tensors:
                opt.state[p] = {
                    "step": tensors[f"{prefix}s.{i}"].reshape(()).clone(),
                    "exp_avg": tensors[f"{prefix}m.{i}"].clone(),
                    "exp_avg_sq": tensors[f"{prefix}v.{i}"].clone(),
                }


def optimizer_step(loss, opt, params, ema: EMA, step: int) -> float:
    """Backward, the gradient norm clipped at 1, an optimiser step, the EMA updated; the loss as a number."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    threaded_torch().nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    ema.update(step)
    return loss.item()


def lr_at(step: int, base: float, warmup: int, total: int, final_frac: float = 0.1, decay_from: float = 0.7):
    """Linear warm-up, constant, then cosine decay over the last 30% of the run."""
    if step < warmup:
        return base * (step + 1) / warmup
    start = int(total * decay_from)
    if step < start:
        return base
    t = (step - start) / max(1, total - start)
    return base * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


def build_facts(work: Path) -> dict:
    p = work / "facts.json"
    return json.loads(p.read_text()) if p.exists() else {}


def save_build_facts(work: Path, facts: dict) -> None:
    (work / "facts.json").write_text(json.dumps(facts, indent=2))
