"""Evaluate the toy-world model family and print every figure issues 3 and 18 ask for.

    python -m studio.toyworld.evaluate [--model DIR] [--quick] [--table-only]

All prompts come from combinations held out of training (see ``world.is_held_out``: one combination in six,
never drawn by ``world.random_scene``); the noise seeds (``EVAL_SEEDS``) are ones the training never used
(training draws its noise from one stream per stage, seeded from ``--seed`` + small offsets). Images are
read back with the rules in ``classify``. The CFG 1 / 5 / 9 table names background and foreground colours
twice: by the nearest world colour (issue 3's rule, blind to drift) and by fixed HSV bands
(``colour_names``, issue 18's rule); issue 18's targets are judged with the HSV naming.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from . import world
from .classify import classify

#: four noise seeds: 240 images a scale, so one image is 0.4 points and a 90% share has a standard error of
#: about 2 points (with two seeds, CFG 5 against CFG 1 on shape was decided by sampling noise)
EVAL_SEEDS = (1001, 1002, 1003, 1004)
TARGETS = {"background": 0.95, "colour": 0.90, "shape": 0.75, "position": 0.80}


def _torch():
    import torch

    torch.set_num_threads(int(os.environ.get("TOYWORLD_THREADS", "2")))
    return torch


def load_pipeline(model_dir: str | Path | None = None, controlnet: bool = False):
    """Plain diffusers loading, offline: StableDiffusionPipeline (+ ControlNet pipeline from_pipe)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    _torch()
    from diffusers import StableDiffusionPipeline
    from diffusers.utils import logging as dlog

    from . import MODEL_DIR

    dlog.set_verbosity_error()
    path = Path(model_dir) if model_dir else MODEL_DIR
    pipe = StableDiffusionPipeline.from_pretrained(
        str(path), safety_checker=None, requires_safety_checker=False
    )
    pipe.set_progress_bar_config(disable=True)
    if controlnet:
        from diffusers import ControlNetModel, StableDiffusionControlNetPipeline

        cn = ControlNetModel.from_pretrained(str(path / "controlnet"))
        pipe = StableDiffusionControlNetPipeline.from_pipe(pipe, controlnet=cn)
        pipe.set_progress_bar_config(disable=True)
    return pipe


def generate(pipe, prompts, seeds, cfg=5.0, steps=20, negative=None, images=None, batch=24):
    """One image per (prompt, seed) pair; each has its own seeded generator, so batching does not matter."""
    torch = _torch()
    out = []
    for i in range(0, len(prompts), batch):
        ps = list(prompts[i : i + batch])
        gens = [torch.Generator().manual_seed(int(s)) for s in seeds[i : i + batch]]
        kw = dict(
            prompt=ps,
            generator=gens,
            guidance_scale=cfg,
            num_inference_steps=steps,
            height=64,
            width=64,
            output_type="np",
        )
        if negative is not None:
            kw["negative_prompt"] = (
                list(negative[i : i + batch]) if not isinstance(negative, str) else ([negative] * len(ps))
            )
        if images is not None:
            kw["image"] = list(images[i : i + batch])
        with torch.no_grad():
            arr = pipe(**kw).images
        out.extend((a * 255).round().clip(0, 255).astype("uint8") for a in arr)
    return out


ASPECTS = ("background", "colour", "shape", "position")
HSV_ASPECTS = ("background_hsv", "colour_hsv")
GUIDANCE_SCALES = (1.0, 5.0, 9.0)
# Issue 18, judged with the HSV naming: at CFG 5 each at least this and at least its CFG 1 figure;
# colour at CFG 9 at least GUIDED_COLOUR_CFG9.
GUIDED_TARGETS = {"background": 0.95, "colour": 0.95, "shape": 0.80, "position": 0.95}
GUIDED_COLOUR_CFG9 = 0.90


def _readings(reading) -> dict[str, str | None]:
    return {
        "background": reading.background,
        "colour": reading.colour,
        "shape": reading.shape,
        "position": reading.position,
        "background_hsv": reading.background_hsv,
        "colour_hsv": reading.colour_hsv,
    }


def adherence(pipe, combos, seeds=EVAL_SEEDS, cfg=5.0, steps=20) -> dict:
    """Share of images read back as asked, per aspect; colours both by nearest world colour and by HSV.

    ``background``/``colour`` use the nearest-colour naming of ``classify``; ``background_hsv``/``colour_hsv``
    name the same medians by the fixed HSV bands of ``colour_names``. ``mean`` is over the four aspects with
    the nearest-colour naming (as recorded in toyworld.json), ``mean_hsv`` with the HSV naming.
    """
    prompts, wanted, ss = [], [], []
    for combo in combos:
        for s in seeds:
            prompts.append(world.canonical_caption(*combo))
            wanted.append(combo)
            ss.append(s)
    imgs = generate(pipe, prompts, ss, cfg=cfg, steps=steps)
    keys = ASPECTS + HSV_ASPECTS
    hits = dict.fromkeys(keys, 0)
    confusions: dict[str, dict[str, int]] = {k: {} for k in keys}
    for img, (c, s, b, p) in zip(imgs, wanted, strict=True):
        got = _readings(classify(img))
        want = {"background": b, "colour": c, "shape": s, "position": p, "background_hsv": b, "colour_hsv": c}
        for key in keys:
            if want[key] == got[key]:
                hits[key] += 1
            else:
                k = f"{want[key]}->{got[key]}"
                confusions[key][k] = confusions[key].get(k, 0) + 1
    n = len(imgs)
    figs: dict = {k: round(v / n, 3) for k, v in hits.items()}
    figs["mean"] = round(sum(figs[k] for k in ASPECTS) / 4, 3)
    figs["mean_hsv"] = round(
        (figs["background_hsv"] + figs["colour_hsv"] + figs["shape"] + figs["position"]) / 4, 3
    )
    figs["n"] = n
    figs["confusions"] = {
        k: dict(sorted(v.items(), key=lambda kv: -kv[1])[:6]) for k, v in confusions.items()
    }
    return figs


def cfg_table(
    pipe, combos, seeds=EVAL_SEEDS, scales=GUIDANCE_SCALES, steps=20, guidance=None
) -> dict[str, dict]:
    """:func:`adherence` at each guidance scale, keyed ``cfg1``, ``cfg5``, ``cfg9`` (``f"cfg{scale:g}"``).

    ``guidance``: a :class:`studio.engine.guidance.Guidance` applied at every scale (None: plain CFG)."""
    from studio.engine.guidance import PLAIN, guided

    table = {}
    for s in scales:
        with guided(pipe, guidance or PLAIN, s):
            table[f"cfg{s:g}"] = adherence(pipe, combos, seeds=seeds, cfg=s, steps=steps)
    return table


def guided_checks(table: dict[str, dict]) -> list[tuple[str, bool]]:
    """Issue 18's targets on a :func:`cfg_table` (HSV naming): (description, met) pairs."""
    c1, c5 = table["cfg1"], table["cfg5"]
    checks = []
    for aspect, target in GUIDED_TARGETS.items():
        key = f"{aspect}_hsv" if aspect in ("background", "colour") else aspect
        checks.append(
            (
                f"{aspect} CFG5 {c5[key]:.3f} >= {target:.2f} and >= CFG1 {c1[key]:.3f}",
                c5[key] >= target and c5[key] >= c1[key],
            )
        )
    if "cfg9" in table:
        c9 = table["cfg9"]["colour_hsv"]
        checks.append((f"colour CFG9 {c9:.3f} >= {GUIDED_COLOUR_CFG9:.2f}", c9 >= GUIDED_COLOUR_CFG9))
    return checks


def negative_prompt_effect(pipe, n_prompts=24, seeds=(2001, 2002, 2003, 2004), cfg=5.0, steps=20) -> dict:
    """Prompts that leave the background open; does "<bg> background" as negative prompt push it away?"""
    opens = sorted({(c, s, p) for c, s, _b, p in world.held_out_combos()})[:n_prompts]
    prompts = [f"a {c} {s}, {p}" for c, s, p in opens for _ in seeds]
    ss = [sd for _ in opens for sd in seeds]

    def shares(imgs):
        counts = {b: 0 for b in world.BACKGROUND_NAMES}
        for img in imgs:
            counts[classify(img).background] += 1
        return {b: round(v / len(imgs), 3) for b, v in counts.items()}

    base = shares(generate(pipe, prompts, ss, cfg=cfg, steps=steps))
    result = {"prompts": len(prompts), "without_negative": base, "with_negative": {}, "ratio": {}}
    for b in world.BACKGROUND_NAMES:
        with_neg = shares(generate(pipe, prompts, ss, cfg=cfg, steps=steps, negative=f"{b} background"))
        result["with_negative"][b] = with_neg[b]
        result["ratio"][b] = round(with_neg[b] / base[b], 3) if base[b] else None
    # A colour the model never picks on open prompts cannot be halved: judged on the colours it does pick.
    seen = [r for r in result["ratio"].values() if r is not None]
    result["halved_where_present"] = bool(seen) and all(r <= 0.5 for r in seen)
    result["never_chosen"] = [b for b, r in result["ratio"].items() if r is None]
    result["all_halved"] = result["halved_where_present"] and not result["never_chosen"]
    return result


def controlnet_placement(cn_pipe, n=48, seed=3001, cfg=5.0, steps=20, tolerance=8.0) -> dict:
    """Template = a held-out scene's canny map; the prompt names another position (or none)."""
    combos = world.held_out_combos()
    prompts, images, targets, seeds = [], [], [], []
    for i in range(n):
        c, s, b, p = combos[(i * 7) % len(combos)]
        template = world.Scene(c, s, b, p, size=world.SIZES[i % 3])
        other = world.POSITION_NAMES[(world.POSITION_NAMES.index(p) + 1 + i % 4) % 5]
        prompt = world.canonical_caption(c, s, b, other) if i % 3 else f"a {c} {s} on a {b} background"
        prompts.append(prompt)
        images.append(world.edge_map(template))
        targets.append(template.centroid)
        seeds.append(seed + i)
    imgs = generate(cn_pipe, prompts, seeds, cfg=cfg, steps=steps, images=images)
    dists, colour_ok = [], 0
    for img, (tx, ty), prompt in zip(imgs, targets, prompts, strict=True):
        r = classify(img)
        colour_ok += r.colour is not None and r.colour in prompt.split()
        dists.append(
            99.0 if r.centroid is None else ((r.centroid[0] - tx) ** 2 + (r.centroid[1] - ty) ** 2) ** 0.5
        )
    return {
        "cases": n,
        "within_8px": round(sum(d <= tolerance for d in dists) / n, 3),
        "median_px": round(statistics.median(dists), 2),
        "colour": round(colour_ok / n, 3),
    }


def speed(model_dir=None, repeats=7) -> dict:
    torch = _torch()
    loads = []
    for _ in range(3):
        t0 = time.perf_counter()
        pipe = load_pipeline(model_dir)
        loads.append(time.perf_counter() - t0)
    prompt = world.canonical_caption("red", "circle", "white", "left")
    times = []
    for i in range(repeats):
        g = torch.Generator().manual_seed(i)
        t0 = time.perf_counter()
        with torch.no_grad():
            pipe(prompt, generator=g, guidance_scale=5.0, num_inference_steps=20, height=64, width=64)
        times.append(time.perf_counter() - t0)
    return {
        "load_s_median": round(statistics.median(loads), 3),
        "image_s_median": round(statistics.median(times[1:]), 3),
    }


def determinism(pipe) -> bool:
    a = generate(pipe, ["a red circle on a white background, left"], [5])[0]
    b = generate(pipe, ["a red circle on a white background, left"], [5])[0]
    return bool((a == b).all())


def evaluate(model_dir=None, quick: bool = False, table_only: bool = False, guidance=None) -> dict:
    """Every figure (``table_only``: just the CFG 1 / 5 / 9 adherence table) on the held-out grid;
    ``guidance`` (a ``Guidance``) applies to the table only."""
    t0 = time.time()
    combos = world.held_out_combos()
    if quick:
        combos = combos[::3]
    pipe = load_pipeline(model_dir)
    report: dict = {"prompts": len(combos), "seeds": list(EVAL_SEEDS)}
    report.update(cfg_table(pipe, combos, guidance=guidance))
    if guidance is not None:
        report["guidance"] = guidance.to_dict()
    report["cfg5_beats_cfg1"] = report["cfg5"]["mean"] > report["cfg1"]["mean"]
    if table_only:
        report["eval_seconds"] = round(time.time() - t0)
        return report
    report["negative_prompt"] = negative_prompt_effect(pipe, n_prompts=12 if quick else 24)
    path = Path(model_dir) if model_dir else None
    from . import MODEL_DIR

    if ((path or MODEL_DIR) / "controlnet").exists():
        cn_pipe = load_pipeline(model_dir, controlnet=True)
        report["controlnet"] = controlnet_placement(cn_pipe, n=24 if quick else 48)
    report["speed"] = speed(model_dir)
    report["deterministic"] = determinism(pipe)
    report["eval_seconds"] = round(time.time() - t0)
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model folder (default: the shipped weights)")
    ap.add_argument(
        "--quick", action="store_true", help="a third of the grid, fewer negative/controlnet cases"
    )
    ap.add_argument(
        "--table-only",
        action="store_true",
        help="only the CFG 1 / 5 / 9 table (no negative prompt, speed, ...)",
    )
    ap.add_argument(
        "--guidance",
        default=None,
        help='the table with a sampling-time guidance, as JSON of its fields, e.g. \'{"method": "fdg"}\'',
    )
    ap.add_argument("--plain", action="store_true", help="the table with plain CFG (no sampling guidance)")
    ap.add_argument("--json", action="store_true", help="print the report as JSON too")
    ap.add_argument("--save", type=Path, default=None, help="write the report as JSON to this file")
    ap.add_argument(
        "--record-into",
        type=Path,
        default=None,
        help="add this build's table to that model folder's toyworld.json (one per --seed of the recipe)",
    )
    args = ap.parse_args(argv)
    from studio.engine.guidance_settings import Guidance
    from studio.engine.model_info import recommended_guidance

    from . import MODEL_DIR, seed_tables
    from .eval_report import print_report, print_seed_tables

    model = Path(args.model) if args.model else MODEL_DIR
    given = json.loads(args.guidance) if args.guidance else recommended_guidance(model)
    chosen = None if args.plain else given
    guidance = Guidance.from_dict(chosen) if chosen else None
    r = evaluate(model, quick=args.quick, table_only=args.table_only, guidance=guidance)
    print_report(r)
    print_seed_tables(seed_tables.recorded(model))
    if args.record_into:
        seed = json.loads((model / "toyworld.json").read_text()).get("seed", 0)
        seed_tables.record(args.record_into, seed, r.get("guidance"), r, r["seeds"])
        print(f"recorded seed {seed}'s table in {args.record_into / 'toyworld.json'}")
    if args.json:
        print(json.dumps(r, indent=2))
    if args.save:
        args.save.write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
