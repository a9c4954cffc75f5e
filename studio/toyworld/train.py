"""Rebuild the toy-world model family from seeds, on the CPU.

    python -m studio.toyworld.train --out studio/toyworld/weights

Stages (each prints its progress; finished stages are skipped when their output exists, so a rerun resumes):
  tokenizer   word-level CLIP tokenizer files (a 32-token caption window: canonical caption + trigger word)
  vae         AutoencoderKL x4 (64x64 -> 16x16x4), MSE + 1e-6 KL on 24x24 crops around the shape, 4000 steps
              at lr 1e-3 (shorter runs lost colours unevenly from seed to seed; see the README)
  latents     render the training scenes, encode them once (posterior means), keep their canny maps and
              where the shape lies on the latent grid
  unet        UNet2DConditionModel + CLIPTextModel trained jointly: v-prediction on a zero-terminal-SNR
              scaled-linear schedule, 10% empty captions (for classifier-free guidance), EMA weights; the
              loss weighted up around the shape and 30% of timesteps at pure noise (see sample_timesteps);
              checkpoints in the work folder let a killed run resume where it stopped
  detail      the same loop again from the unet stage's EMA weights: fresh optimiser and EMA, a lower learning
              rate and timesteps spread evenly; outlines sharpen (squares went from 72.5% to about 80%)
  controlnet  ControlNetModel.from_unet trained on canny edge maps (position words often dropped or wrong)
  assemble    StableDiffusionPipeline.save_pretrained + controlnet/ + toyworld.json (build facts)
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import world
from .models import VAE_SCALE
from .recipe import STAGES, parse_args
from .vocab import build_tokenizer, check_tokenizer


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------------------------- helpers
def _torch():
    import torch

    torch.set_num_threads(int(os.environ.get("TOYWORLD_THREADS", "2")))
    torch.set_flush_denormal(True)
    return torch


def images_to_tensor(arrs: list[np.ndarray]):
    torch = _torch()
    x = torch.from_numpy(np.stack(arrs)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


class EMA:
    def __init__(self, params, decay: float):
        self.params = list(params)
        self.shadow = [p.detach().clone() for p in self.params]
        self.decay = decay

    def update(self, step: int) -> None:
        torch = _torch()
        d = min(self.decay, (1 + step) / (10 + step))
        with torch.no_grad():
            torch._foreach_mul_(self.shadow, d)
            torch._foreach_add_(self.shadow, [p.detach() for p in self.params], alpha=1 - d)

    def copy_to(self, params) -> None:
        torch = _torch()
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
    torch = _torch()
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


def lr_at(step: int, base: float, warmup: int, total: int, final_frac: float = 0.1, decay_from: float = 0.7):
    """Linear warm-up, constant, then cosine decay over the last 30% of the run."""
    if step < warmup:
        return base * (step + 1) / warmup
    start = int(total * decay_from)
    if step < start:
        return base
    t = (step - start) / max(1, total - start)
    return base * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))


# ----------------------------------------------------------------------------------------------- stages
def stage_tokenizer(out: Path, args) -> None:
    tok = build_tokenizer(out / "tokenizer", args.max_length)
    from transformers import CLIPTokenizer

    again = CLIPTokenizer.from_pretrained(str(out / "tokenizer"))
    check_tokenizer(again)
    assert again.model_max_length == args.max_length and len(again) == len(tok), "round trip changed it"
    log(f"tokenizer: {len(again)} tokens, every vocabulary word is one token, {args.max_length} per caption")


def stage_vae(out: Path, work: Path, args) -> None:
    torch = _torch()
    from .models import make_vae

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed + 1)
    scenes = [world.random_scene(rng) for _ in range(args.vae_images)]
    data = images_to_tensor([world.render_array(s) for s in scenes])
    vae = make_vae()
    if args.vae_continue and (out / "vae" / "diffusion_pytorch_model.safetensors").exists():
        from diffusers import AutoencoderKL

        vae = AutoencoderKL.from_pretrained(str(out / "vae"))
        log("vae: continuing from the saved weights")
    opt = torch.optim.AdamW(vae.parameters(), lr=args.vae_lr, weight_decay=0.0)
    steps, bs, crop = args.vae_steps, args.vae_batch, args.vae_crop
    t0 = time.time()
    g = torch.Generator().manual_seed(args.seed + 2)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_at(step, args.vae_lr, 50, steps, final_frac=0.05, decay_from=0.6)
        idx = torch.randint(0, data.shape[0], (bs,), generator=g)
        # crops around the shape (most of the image is plain background)
        jit = torch.randint(-crop // 2, crop // 2 + 1, (bs, 2), generator=g).tolist()
        crops = []
        for k, (jx, jy) in zip(idx.tolist(), jit, strict=True):
            cx, cy = scenes[k].centroid
            ox = min(max(cx + jx - crop // 2, 0), 64 - crop)
            oy = min(max(cy + jy - crop // 2, 0), 64 - crop)
            crops.append(data[k, :, oy : oy + crop, ox : ox + crop])
        x = torch.stack(crops)
        if step % 2:
            x = x.flip(-1)
        post = vae.encode(x).latent_dist
        # Decode the posterior mean: with the KL weight this small the latent noise would only slow learning;
        # the log-variance head is pinned to a tiny variance after training (see below).
        rec = vae.decode(post.mean).sample
        mse = torch.nn.functional.mse_loss(rec, x)
        loss = mse + 1e-6 * post.kl().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            psnr = 10 * math.log10(4.0 / max(mse.item(), 1e-10))
            log(f"vae step {step}/{steps} mse {mse.item():.5f} psnr {psnr:.1f} dB ({time.time() - t0:.0f}s)")
    vae.eval()
    with torch.no_grad():
        # The encoder is deterministic: its log-variance outputs are a constant -20 (std 4.5e-5), so
        # latent_dist.sample() == latent_dist.mean for anyone (e.g. a LoRA trainer) who samples.
        half = vae.quant_conv.out_channels // 2
        vae.quant_conv.weight[half:] = 0.0
        vae.quant_conv.bias[half:] = -20.0
        sample = data[:512]
        lat = vae.encode(sample).latent_dist.mean
        rec = vae.decode(lat).sample
        psnr = 10 * math.log10(4.0 / torch.nn.functional.mse_loss(rec, sample).item())
        std = lat.std().item()
    vae.register_to_config(scaling_factor=1.0 / std)
    vae.save_pretrained(str(out / "vae"), safe_serialization=True)
    facts = _facts(work)
    facts["vae"] = {
        "steps": steps + (facts.get("vae", {}).get("steps", 0) if args.vae_continue else 0),
        "psnr_full_64": round(psnr, 2),
        "latent_std": std,
        "seconds": round(time.time() - t0)
        + (facts.get("vae", {}).get("seconds", 0) if args.vae_continue else 0),
    }
    _save_facts(work, facts)
    log(f"vae: full-image PSNR {psnr:.1f} dB, latent std {std:.3f} -> scaling_factor {1 / std:.3f}")


def stage_latents(out: Path, work: Path, args) -> None:
    torch = _torch()
    from diffusers import AutoencoderKL
    from safetensors.torch import save_file

    vae = AutoencoderKL.from_pretrained(str(out / "vae")).eval()
    t0 = time.time()
    lats, edges, attrs, masks = [], [], [], []
    n = args.images
    for start in range(0, n, 256):
        scenes = [world.scene_for_seed(args.seed * 1_000_003 + i) for i in range(start, min(n, start + 256))]
        arrs = [world.render_array(s) for s in scenes]
        with torch.no_grad():
            lat = vae.encode(images_to_tensor(arrs)).latent_dist.mean * vae.config.scaling_factor
        lats.append(lat)
        masks.append(foreground_masks(scenes, arrs))
        edges.append(torch.from_numpy(np.stack([np.asarray(world.canny(a))[..., 0] for a in arrs])))
        attrs.append(
            torch.tensor(
                [
                    [
                        world.COLOUR_NAMES.index(s.colour),
                        world.SHAPES.index(s.shape),
                        world.BACKGROUND_NAMES.index(s.background),
                        world.POSITION_NAMES.index(s.position),
                    ]
                    for s in scenes
                ]
            )
        )
    save_file(
        {
            "latents": torch.cat(lats).contiguous(),
            "edges": torch.cat(edges).contiguous(),
            "attrs": torch.cat(attrs).contiguous(),
            "masks": torch.cat(masks).contiguous(),
        },
        str(work / "latents.safetensors"),
    )
    log(f"latents: {n} scenes encoded in {time.time() - t0:.0f}s (std {torch.cat(lats).std():.3f})")


def foreground_masks(scenes: list[world.Scene], arrs: list[np.ndarray]):
    """Where each scene's shape lies on the latent grid (1 inside, 0 outside), grown by one latent cell.

    The loss is weighted up there: the shape covers under a tenth of the image, so with a plain MSE the
    background dominates and the words that only move or reshape the shape (position, shape) carry too
    little gradient to be learned in a CPU-sized run.
    """
    torch = _torch()
    bg = np.stack([np.array(world.BACKGROUNDS[s.background], dtype=np.int16) for s in scenes])
    fg = (np.abs(np.stack(arrs).astype(np.int16) - bg[:, None, None, :]).max(-1) > 24).astype(np.float32)
    m = torch.from_numpy(fg)[:, None]
    m = torch.nn.functional.max_pool2d(m, VAE_SCALE)
    m = torch.nn.functional.max_pool2d(m, 3, stride=1, padding=1)
    return m[:, 0].to(torch.uint8)


def _scene_from_attrs(a) -> world.Scene:
    c, s, b, p = (int(v) for v in a)
    return world.Scene(
        world.COLOUR_NAMES[c], world.SHAPES[s], world.BACKGROUND_NAMES[b], world.POSITION_NAMES[p]
    )


NO_POSITION_FORMS = [f for f, _ in world.CAPTION_FORMS if "{position}" not in f and "{colour}" in f]


def make_captions(
    attrs, rng: random.Random, drop: float, mode: str = "text", filler_share: float = 0.0
) -> list[str]:
    """Training captions for `attrs`: `drop` of them empty, `filler_share` of the rest with a made-up word."""
    caps = []
    for a in attrs.tolist():
        scene = _scene_from_attrs(a)
        if rng.random() < drop:
            caps.append("")
        elif mode == "control":
            r = rng.random()
            if r < 0.4:
                caps.append(scene.caption(rng.choice(NO_POSITION_FORMS)))
            elif r < 0.7:  # a position word that disagrees with the edge map
                wrong = rng.choice([p for p in world.POSITION_NAMES if p != scene.position])
                caps.append(world.Scene(scene.colour, scene.shape, scene.background, wrong).caption())
            else:
                caps.append(world.random_caption(scene, rng))
        else:
            caps.append(world.random_caption(scene, rng))
        if caps[-1] and filler_share and rng.random() < filler_share:
            caps[-1] = world.with_filler_word(caps[-1], rng)
    return caps


def tokenize(tok, captions: list[str]):
    """Token ids of `captions`, padded and cut to the tokenizer's window."""
    window = tok.model_max_length
    return tok(captions, padding="max_length", max_length=window, truncation=True, return_tensors="pt")


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
    torch = _torch()
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
    facts = _facts(work)
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
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.update(step)
        losses.append(loss.item())
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
            facts = _facts(work)
            facts[phase.name] = {
                "steps": step,
                "batch": bs,
                "lr": phase.lr,
                "t_power": phase.t_power,
                "top_t_share": phase.top_t_share,
                "seconds": round(seconds_before + time.time() - t0),
            }
            _save_facts(work, facts)
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
    torch = _torch()
    u = torch.rand(batch, generator=g)
    t = (u**power * num_train_timesteps).long().clamp(max=num_train_timesteps - 1)
    top = torch.rand(batch, generator=g) < top_share
    span = max(1, num_train_timesteps // 40)
    t_top = num_train_timesteps - 1 - torch.randint(0, span, (batch,), generator=g)
    return torch.where(top, t_top, t)


def _export_unet(out: Path, unet, te, ema: EMA, params) -> None:
    """Write the EMA weights of the UNet and text encoder to out/ (the training weights are restored)."""
    torch = _torch()
    backup = [p.detach().clone() for p in params]
    ema.copy_to(params)
    unet.save_pretrained(str(out / "unet"), safe_serialization=True)
    te.save_pretrained(str(out / "text_encoder"), safe_serialization=True)
    with torch.no_grad():
        for p, b in zip(params, backup, strict=True):
            p.copy_(b)
    _write_scheduler_and_index(out)


def _write_scheduler_and_index(out: Path) -> None:
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
    torch = _torch()
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
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        ema.update(step)
        losses.append(loss.item())
        if (step + 1) % 50 == 0:
            dt = (time.time() - t_prev) / 50
            t_prev = time.time()
            log(f"controlnet step {step + 1}/{total} loss {np.mean(losses[-50:]):.4f} {dt:.2f}s/step")
    ema.copy_to(params)
    cn.save_pretrained(str(out / "controlnet"), safe_serialization=True)
    facts = _facts(work)
    facts["controlnet"] = {"steps": total, "batch": bs, "seconds": round(time.time() - t0)}
    _save_facts(work, facts)
    log(f"controlnet: {total} steps in {time.time() - t0:.0f}s")


def stage_assemble(out: Path, work: Path, args) -> None:
    _write_scheduler_and_index(out)
    facts = _facts(work)
    facts["command"] = "python -m studio.toyworld.train " + " ".join(sys.argv[1:])
    facts["seed"] = args.seed
    facts["images"] = args.images
    facts["train_seconds_total"] = sum(
        facts.get(k, {}).get("seconds", 0) for k in ("vae", "unet", "detail", "controlnet")
    ) + facts.get("latents_seconds", 0)
    curve = work / "curve.jsonl"
    if curve.exists():
        facts["learning_curve"] = [
            json.loads(line) for line in curve.read_text().splitlines() if line.strip()
        ]
    facts["guidance"] = json.loads(args.guidance)
    (out / "toyworld.json").write_text(json.dumps(facts, indent=2) + "\n")
    record_seed_table_and_grid(out, args.seed, facts["guidance"], args.grid or default_grid_path(out))
    total = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    log(f"assembled {out} ({total / 1e6:.1f} MB)")


def default_grid_path(out: Path) -> Path:
    """The README's grid for the shipped folder; next to any other build (``<out>-cfg-grid.png``)."""
    from . import MODEL_DIR
    from .cfg_grid import REPO_GRID

    return REPO_GRID if out.resolve() == MODEL_DIR.resolve() else out.parent / f"{out.name}-cfg-grid.png"


def record_seed_table_and_grid(out: Path, seed: int, guidance: dict, grid: Path) -> None:
    """Measure the CFG 1 / 5 / 9 table with the recipe's guidance (recorded in toyworld.json for this seed),
    and draw the prompts × CFG grid."""
    from studio.engine.guidance_settings import Guidance

    from . import seed_tables
    from .cfg_grid import draw_grid
    from .evaluate import EVAL_SEEDS, cfg_table, load_pipeline

    t0 = time.time()
    pipe = load_pipeline(out)
    table = cfg_table(pipe, world.held_out_combos(), guidance=Guidance.from_dict(guidance))
    seed_tables.record(out, seed, guidance, table, list(EVAL_SEEDS))
    log(f"seed {seed}: CFG 5 {json.dumps(seed_tables.compact(table)['cfg5'])} ({time.time() - t0:.0f}s)")
    log(f"grid: {draw_grid(out, grid, guidance, pipe=pipe)}")


def _facts(work: Path) -> dict:
    p = work / "facts.json"
    return json.loads(p.read_text()) if p.exists() else {}


def _save_facts(work: Path, facts: dict) -> None:
    (work / "facts.json").write_text(json.dumps(facts, indent=2))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, description=__doc__)

    out: Path = args.out
    tag = hashlib.sha1(str(out.resolve()).encode()).hexdigest()[:10]
    work: Path = args.work or Path(tempfile.gettempdir()) / f"toyworld-work-{tag}"
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    log(f"out {out}  work {work}")
    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    for s in stages:
        if s not in STAGES:
            raise SystemExit(f"--stages: unknown stage {s!r} (one of {', '.join(STAGES)})")
    done = {
        "tokenizer": lambda: (out / "tokenizer" / "tokenizer.json").exists(),
        "vae": lambda: (out / "vae" / "diffusion_pytorch_model.safetensors").exists(),
        "latents": lambda: (work / "latents.safetensors").exists(),
        "unet": lambda: _facts(work).get("unet", {}).get("steps", 0) >= args.unet_steps,
        "detail": lambda: _facts(work).get("detail", {}).get("steps", 0) >= args.detail_steps,
        "controlnet": lambda: (out / "controlnet" / "diffusion_pytorch_model.safetensors").exists(),
        "assemble": lambda: False,
    }
    t_all = time.time()
    for s in STAGES:
        if s not in stages:
            continue
        if done[s]() and not args.force:
            log(f"stage {s}: already done, skipped")
            continue
        log(f"stage {s}")
        t0 = time.time()
        if s == "tokenizer":
            stage_tokenizer(out, args)
        elif s == "vae":
            stage_vae(out, work, args)
        elif s == "latents":
            stage_latents(out, work, args)
            facts = _facts(work)
            facts["latents_seconds"] = round(time.time() - t0)
            _save_facts(work, facts)
        elif s in ("unet", "detail"):
            if args.force and s == "unet":
                (work / "unet_state.safetensors").unlink(missing_ok=True)
                (work / "curve.jsonl").unlink(missing_ok=True)
            if args.force or s == "unet":  # the detail phase starts over (from the unet phase's new weights)
                (work / "detail_state.safetensors").unlink(missing_ok=True)
                facts = _facts(work)
                facts.pop("detail", None)
                _save_facts(work, facts)
            stage_unet(out, work, args, UnetPhase.from_args(s, args))
        elif s == "controlnet":
            stage_controlnet(out, work, args)
        else:
            stage_assemble(out, work, args)
        log(f"stage {s} took {time.time() - t0:.0f}s")
    log(f"all done in {time.time() - t_all:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
