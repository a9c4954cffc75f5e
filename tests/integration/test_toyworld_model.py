"""The shipped toy-world model: loads offline with plain diffusers, is deterministic, follows prompts."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"

from studio.toyworld import CONTROLNET_DIR, MODEL_DIR, model_info, world  # noqa: E402
from studio.toyworld.classify import classify  # noqa: E402

# A small fixed grid of held-out prompts (never seen in training) and seeds.
GRID = world.held_out_combos()  # 60 prompts never seen in training: every shape, colour and position
SEED = 1001


def _gen(pipe, prompts, seeds, **kw):
    gens = [torch.Generator().manual_seed(s) for s in seeds]
    kw.setdefault("guidance_scale", 5.0)
    kw.setdefault("num_inference_steps", 20)
    with torch.no_grad():
        out = pipe(prompt=prompts, generator=gens, height=64, width=64, output_type="np", **kw).images
    return [(a * 255).round().clip(0, 255).astype(np.uint8) for a in out]


@pytest.fixture(scope="module")
def pipe():
    from diffusers import StableDiffusionPipeline

    p = StableDiffusionPipeline.from_pretrained(str(MODEL_DIR))
    p.set_progress_bar_config(disable=True)
    return p


def test_shipped_folder_is_safetensors_only_and_small():
    files = [f for f in MODEL_DIR.rglob("*") if f.is_file()]
    assert (MODEL_DIR / "model_index.json").exists()
    for sub in ("unet", "vae", "text_encoder", "tokenizer", "scheduler", "controlnet"):
        assert (MODEL_DIR / sub).is_dir(), sub
    assert not [f for f in files if f.suffix in {".bin", ".pt", ".pth", ".ckpt", ".pkl"}]
    assert sum(f.stat().st_size for f in files) <= 30 * 1024 * 1024
    info = model_info()
    assert info["available"] and info["path"] == str(MODEL_DIR) and info["params"] > 100_000


def test_loads_offline_with_plain_diffusers(pipe):
    from transformers import CLIPTokenizer

    tok = CLIPTokenizer.from_pretrained(str(MODEL_DIR / "tokenizer"))
    assert len(tok("a purple triangle on a teal background, bottom").input_ids) == 11
    assert pipe.scheduler.config.prediction_type == "v_prediction"
    assert pipe.scheduler.config.rescale_betas_zero_snr


def test_same_seed_same_pixels(pipe):
    p = [world.canonical_caption("red", "circle", "white", "left")]
    a, b, c = _gen(pipe, p, [7]), _gen(pipe, p, [7]), _gen(pipe, p, [8])
    assert (a[0] == b[0]).all()
    assert not (a[0] == c[0]).all()


def test_adherence_on_the_held_out_grid(pipe):
    """Issue 18's CFG 5 targets on every held-out prompt, one seed, with the build's recommended guidance (as
    the studio generates): background, colour (HSV naming) and position >= 0.95, shape >= 0.80, each shape
    drawn right in most of its prompts (squares are this model's weak shape)."""
    from studio.engine.guidance import Guidance, guided
    from studio.engine.model_info import recommended_guidance

    prompts = [world.canonical_caption(*c) for c in GRID]
    with guided(pipe, Guidance.from_dict(recommended_guidance(MODEL_DIR)), 5.0):
        imgs = _gen(pipe, prompts, [SEED] * len(prompts))
    readings = [classify(img) for img in imgs]
    hits = dict.fromkeys(("background", "colour", "shape", "position"), 0)
    for r, (c, s, b, p) in zip(readings, GRID, strict=True):
        hits["background"] += r.background_hsv == b
        hits["colour"] += r.colour_hsv == c
        hits["shape"] += r.shape == s
        hits["position"] += r.position == p
    n = len(GRID)
    for aspect in ("background", "colour", "position"):
        assert hits[aspect] >= math.ceil(0.95 * n), hits
    assert hits["shape"] >= math.ceil(0.80 * n), hits
    assert all(r.area >= 40 for r in readings), "every image should show a shape"
    for shape in world.SHAPES:
        got = [r.shape for r, combo in zip(readings, GRID, strict=True) if combo[1] == shape]
        assert len(got) >= 3 and got.count(shape) > len(got) / 2, (shape, got)


def test_controlnet_puts_the_shape_where_the_edge_map_has_it(pipe):
    from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

    cn = ControlNetModel.from_pretrained(str(CONTROLNET_DIR))
    cpipe = StableDiffusionControlNetPipeline.from_pipe(pipe, controlnet=cn)
    cpipe.set_progress_bar_config(disable=True)
    cases = [
        ("red", "square", "white", "left", "right"),
        ("blue", "circle", "black", "top", "bottom"),
        ("yellow", "triangle", "teal", "right", "left"),
        ("green", "circle", "gray", "bottom", "top"),
    ]
    templates = [world.Scene(c, s, b, p, size=11) for c, s, b, p, _ in cases]
    prompts = [world.canonical_caption(c, s, b, other) for c, s, b, _, other in cases]
    imgs = _gen(cpipe, prompts, [SEED] * len(cases), image=[world.edge_map(t) for t in templates])
    near = 0
    for img, t in zip(imgs, templates, strict=True):
        r = classify(img)
        if r.centroid is not None:
            near += ((r.centroid[0] - t.centroid[0]) ** 2 + (r.centroid[1] - t.centroid[1]) ** 2) ** 0.5 <= 8
    assert near >= 3
