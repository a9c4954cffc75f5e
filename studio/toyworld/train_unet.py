"""The toy-world build's denoiser stages: UNet + text encoder (``unet``, then ``detail``) and the ControlNet
(``controlnet``), each resumable from its checkpoint in the work folder.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import world
from .train_data import make_captions, tokenize
from .train_loop import (
    EMA,
    build_facts,
    load_state,
    log,
    lr_at,
    optimizer_step,
    pack_training,
    save_build_facts,
    save_state,
    threaded_torch,
    unpack_training,
)


def load_text_and_unet(out: Path):
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(out / "tokenizer"))
    te = CLIPTextModel.from_pretrained(str(out / "text_encoder"))
    unet = UNet2DConditionModel.from_pretrained(str(out / "unet"))
    return tok, te, unet


@dataclass(frozen=True)
class UnetPhase:
    """One run of the UNet (+ text encoder) training loop.


    ``unet``: from scratch (or ``--init-from``), mostly high-noise timesteps, where the caption decides what
    goes where. ``detail``: from the ``unet`` phase's EMA weights, with a fresh optimiser, EMA and schedule,
    timesteps spread evenly and a lower learning rate: outlines sharpen (squares keep their corners).
    """

    name: str
    steps: int
    lr: float
    t_power: float
    top_t_share: float
    seed_offset: int
    from_saved: bool

    @classmethod
    def from_args(cls, name: str, args) -> UnetPhase:
        if name == "unet":
            return cls("unet", args.unet_steps, args.lr, args.t_power, args.top_t_share, 10, False)
        # The detail phase restarts the unet phase's random streams (seed + 10, 11, 12). Of two streams tried,
        # this one drew better shapes on a validation grid of training combinations (87.5% vs 75.0% for
        # seed + 30, 31, 32); see the README.
        return cls(
            "detail", args.detail_steps, args.detail_lr, args.detail_t_power, args.detail_top_t_share,
            10, True,
        )  # fmt: skip


def stage_unet(out: Path, work: Path, args, phase: UnetPhase) -> None:
    torch = threaded_torch()
    from safetensors.torch import load_file
    from transformers import CLIPTokenizer

    from .models import make_text_encoder, make_train_scheduler, make_unet

    data = load_file(str(work / "latents.safetensors"))
    latents, attrs = data["latents"], data["attrs"]
    # loss weight per latent cell: 1 on the background, 1 + fg_weight on and around the shape (0: plain MSE)
    weights = 1.0 + args.fg_weight * data["masks"][:, None].float()
    tok = CLIPTokenizer.from_pretrained(str(out / "tokenizer"))
    torch.manual_seed(args.seed + phase.seed_offset)
    unet = make_unet()
    te = make_text_encoder(len(tok), tok.bos_token_id, tok.eos_token_id, tok.model_max_length)
    params = list(unet.parameters()) + list(te.parameters())
    sched = make_train_scheduler()
    state_path = work / f"{phase.name}_state.safetensors"
    rng = random.Random(args.seed + phase.seed_offset + 1)
    g, step = torch.Generator().manual_seed(args.seed + phase.seed_offset + 2), 0
    first_step = 0  # where this run's learning-rate schedule starts (after --init-from)
    if phase.from_saved and not state_path.exists():
        # the unet phase's final EMA weights (the ones it exported), whatever later stages wrote to out/
        tensors, meta = load_state(work / "unet_state.safetensors")
        with torch.no_grad():
            for i, p in enumerate(params):
                p.copy_(tensors[f"ema.{i}"])
        log(f"{phase.name}: initialised from the unet phase's EMA weights (step {meta['step']})")
    elif args.init_from and not state_path.exists():
        from diffusers import UNet2DConditionModel
        from transformers import CLIPTextModel

        unet.load_state_dict(UNet2DConditionModel.from_pretrained(str(args.init_from / "unet")).state_dict())
        te.load_state_dict(CLIPTextModel.from_pretrained(str(args.init_from / "text_encoder")).state_dict())
        step = first_step = args.init_step
        log(f"unet: initialised from {args.init_from} (weights only), counting from step {step}")
    opt = torch.optim.AdamW(params, lr=phase.lr, betas=(0.9, 0.99), weight_decay=0.01)
    ema = EMA(params, args.ema)
    if state_path.exists():
        tensors, meta = load_state(state_path)
        unpack_training(tensors, params, ema, opt)
        step = meta["step"]
        first_step = meta.get("first_step", 0)
        rng.setstate(tuple(meta["rng"][:1]) + (tuple(meta["rng"][1]),) + tuple(meta["rng"][2:]))
        g.set_state(tensors["gen_state"])
        log(f"{phase.name}: resumed at step {step}")
    facts = build_facts(work)
    t0, t_prev, seconds_before = time.time(), time.time(), facts.get(phase.name, {}).get("seconds", 0)
    # learning-curve points count the steps of earlier phases too
    curve_offset = facts.get("unet", {}).get("steps", 0) if phase.from_saved else 0
    total = phase.steps
    bs = args.batch
    losses = []
    unet.train()
    te.train()
    while step < total:
        for group in opt.param_groups:
            group["lr"] = lr_at(step - first_step, phase.lr, 200, total - first_step, decay_from=0.6)
        idx = torch.randint(0, latents.shape[0], (bs,), generator=g)
        x0 = latents[idx]
        caps = make_captions(attrs[idx], rng, args.cfg_drop, filler_share=args.filler_share)
        ids = tokenize(tok, caps)
        noise = torch.randn(x0.shape, generator=g)
        t = sample_timesteps(bs, g, sched.config.num_train_timesteps, phase.t_power, phase.top_t_share)
        xt = sched.add_noise(x0, noise, t)
        target = sched.get_velocity(x0, noise, t)
        cond = te(ids.input_ids)[0]
        pred = unet(xt, t, encoder_hidden_states=cond).sample
        w = weights[idx]
        loss = (w * (pred - target) ** 2).mean() / w.mean()
        losses.append(optimizer_step(loss, opt, params, ema, step))
        step += 1
        if step % 50 == 0:
            dt = (time.time() - t_prev) / 50
            t_prev = time.time()
            log(
                f"{phase.name} step {step}/{total} loss {np.mean(losses[-50:]):.4f} "
                f"lr {opt.param_groups[0]['lr']:.2e} "
                f"{dt:.2f}s/step"
            )
        if step % args.checkpoint_every == 0 or step == total:
            tensors = pack_training(params, ema, opt)
            tensors["gen_state"] = g.get_state()
            st = rng.getstate()
            save_state(
                state_path,
                tensors,
                {"step": step, "first_step": first_step, "rng": [st[0], list(st[1]), st[2]]},
            )
            facts = build_facts(work)
            facts[phase.name] = {
                "steps": step,
                "batch": bs,
                "lr": phase.lr,
                "t_power": phase.t_power,
                "top_t_share": phase.top_t_share,
                "seconds": round(seconds_before + time.time() - t0),
            }
            save_build_facts(work, facts)
            _export_unet(out, unet, te, ema, params)
            if args.curve_every and (step % args.curve_every == 0 or step == total):
                point = quick_curve_point(out, curve_offset + step)
                with open(work / "curve.jsonl", "a") as f:
                    f.write(json.dumps(point) + "\n")
                log(f"curve {point}")
    log(f"{phase.name}: {step} steps done")


def sample_timesteps(batch: int, g, num_train_timesteps: int, power: float, top_share: float):
    """Training timesteps: T * u**power (power < 1: more high noise), a `top_share` of them in the top 2.5%.


    Sampling starts at t = T - 1 (zero terminal SNR: pure noise), where nothing but the caption says where
    the shape goes or what it is; a few steps later the noisy latent already shows it. Words that only move
    or reshape the shape are learned from those first steps alone, so they get a share of every batch.
    """
    torch = threaded_torch()
    u = torch.rand(batch, generator=g)
    t = (u**power * num_train_timesteps).long().clamp(max=num_train_timesteps - 1)
    top = torch.rand(batch, generator=g) < top_share
    span = max(1, num_train_timesteps // 40)
    t_top = num_train_timesteps - 1 - torch.randint(0, span, (batch,), generator=g)
    return torch.where(top, t_top, t)


def _export_unet(out: Path, unet, te, ema: EMA, params) -> None:
    """Write the EMA weights of the UNet and text encoder to out/ (the training weights are restored)."""
    torch = threaded_torch()
    backup = [p.detach().clone() for p in params]
    ema.copy_to(params)
    unet.save_pretrained(str(out / "unet"), safe_serialization=True)
    te.save_pretrained(str(out / "text_encoder"), safe_serialization=True)
    with torch.no_grad():
        for p, b in zip(params, backup, strict=True):
            p.copy_(b)
    write_scheduler_and_index(out)


def write_scheduler_and_index(out: Path) -> None:
    from .models import make_inference_scheduler

    make_inference_scheduler().save_pretrained(str(out / "scheduler"))
    index = {
        "_class_name": "StableDiffusionPipeline",
        "_diffusers_version": _diffusers_version(),
        "feature_extractor": [None, None],
        "image_encoder": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "EulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")


def _diffusers_version() -> str:
    import diffusers

    return diffusers.__version__


def quick_curve_point(out: Path, step: int) -> dict:
    from .evaluate import adherence, load_pipeline

    pipe = load_pipeline(out, controlnet=False)
    t0 = time.time()
    figs = adherence(pipe, world.held_out_combos()[::2], seeds=(7,), cfg=5.0, steps=20)
    return {
        "step": step,
        **{k: figs[k] for k in ("background", "colour", "shape", "position")},
        "shape_confusions": figs["confusions"]["shape"],
        "eval_seconds": round(time.time() - t0, 1),
    }


def stage_controlnet(out: Path, work: Path, args) -> None:
    torch = threaded_torch()
    from safetensors.torch import load_file

    from .models import make_controlnet, make_train_scheduler

    data = load_file(str(work / "latents.safetensors"))
    latents, attrs, edges = data["latents"], data["attrs"], data["edges"]
    tok, te, unet = load_text_and_unet(out)
    unet.requires_grad_(False)
    te.requires_grad_(False)
    torch.manual_seed(args.seed + 20)
    cn = make_controlnet(unet)
    params = [p for p in cn.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.cn_lr, weight_decay=0.0)
    ema = EMA(params, 0.99)
    sched = make_train_scheduler()
    rng, g = random.Random(args.seed + 21), torch.Generator().manual_seed(args.seed + 22)
    total, bs, t0, t_prev = args.cn_steps, args.batch, time.time(), time.time()
    losses = []
    for step in range(total):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.cn_lr, 50, total)
        idx = torch.randint(0, latents.shape[0], (bs,), generator=g)
        x0 = latents[idx]
        caps = make_captions(attrs[idx], rng, 0.1, mode="control", filler_share=args.filler_share)
        ids = tokenize(tok, caps)
        cond_img = (edges[idx].float() / 255.0)[:, None].expand(-1, 3, -1, -1)
        noise = torch.randn(x0.shape, generator=g)
        t = torch.randint(0, sched.config.num_train_timesteps, (bs,), generator=g)
        xt = sched.add_noise(x0, noise, t)
        target = sched.get_velocity(x0, noise, t)
        with torch.no_grad():
            cond = te(ids.input_ids)[0]
        down, mid = cn(xt, t, encoder_hidden_states=cond, controlnet_cond=cond_img, return_dict=False)
        pred = unet(
            xt,
            t,
            encoder_hidden_states=cond,
            down_block_additional_residuals=down,
            mid_block_additional_residual=mid,
        ).sample
        loss = torch.nn.functional.mse_loss(pred, target)
        losses.append(optimizer_step(loss, opt, params, ema, step))
        if (step + 1) % 50 == 0:
            dt = (time.time() - t_prev) / 50
            t_prev = time.time()
            log(f"controlnet step {step + 1}/{total} loss {np.mean(losses[-50:]):.4f} {dt:.2f}s/step")
    ema.copy_to(params)
    cn.save_pretrained(str(out / "controlnet"), safe_serialization=True)
    facts = build_facts(work)
    facts["controlnet"] = {"steps": total, "batch": bs, "seconds": round(time.time() - t0)}
    save_build_facts(work, facts)
    log(f"controlnet: {total} steps in {time.time() - t0:.0f}s")
