"""The toy-world build's data stages: the VAE (``vae``), the cached latents, edge maps and shape masks
(``latents``), and the training captions (with CFG dropout and filler words) the UNet stages read.
"""

from __future__ import annotations

import math
import random
import time
from pathlib import Path

import numpy as np

from . import world
from .models import VAE_SCALE
from .train_loop import build_facts, images_to_tensor, log, lr_at, save_build_facts, threaded_torch


def stage_vae(out: Path, work: Path, args) -> None:
    torch = threaded_torch()
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
    facts = build_facts(work)
    facts["vae"] = {
        "steps": steps + (facts.get("vae", {}).get("steps", 0) if args.vae_continue else 0),
        "psnr_full_64": round(psnr, 2),
        "latent_std": std,
        "seconds": round(time.time() - t0)
        + (facts.get("vae", {}).get("seconds", 0) if args.vae_continue else 0),
    }
    save_build_facts(work, facts)
    log(f"vae: full-image PSNR {psnr:.1f} dB, latent std {std:.3f} -> scaling_factor {1 / std:.3f}")


def stage_latents(out: Path, work: Path, args) -> None:
    torch = threaded_torch()
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
    torch = threaded_torch()
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
