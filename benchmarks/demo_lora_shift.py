"""Demo brand LoRAs through the studio's real path: palette score at LoRA weight 0, 0.5 and 1.

Builds the services exactly as ``studio generate`` does (``build_services`` on a fresh temporary
STUDIO_HOME), syncs the demo brands from ``brands/``, then for every demo brand generates a fixed grid of
open toy-world prompts (colour and background left to the model) × seeds × samplers with the brand's LoRA at
each weight, through ``GenerationService.generate`` (brand style template, trigger words, brand defaults for
size, CFG and steps). Each saved image carries the studio's palette score (:mod:`studio.palette`: the share
of pixels whose dominant colour is within CIEDE2000 15 of a brand colour) and its off-palette flag (score
below the brand's ``palette_threshold``). It prints the mean score and the flag rate per brand, sampler and
weight, all in one run.

    .venv/bin/python benchmarks/demo_lora_shift.py [--seeds 3] [--samplers "Euler,Euler a,DPM++ 2M"]
                                                   [--weights 0,0.5,1] [--steps N] [--only SLUG]
                                                   [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO_BRANDS = Path(__file__).resolve().parents[1] / "brands"
#: open prompts of the toy world: a shape and maybe a position, no colour, no background
PROMPTS: tuple[str, ...] = (
    "a circle, left",
    "a square",
    "a triangle, top",
    "a circle",
    "a square, right",
    "a triangle, bottom",
    "a circle, center",
    "a square, top",
)
SAMPLERS: tuple[str, ...] = ("Euler", "Euler a", "DPM++ 2M")
WEIGHTS: tuple[float, ...] = (0.0, 0.5, 1.0)
BASE_SEED = 1000


def demo_brands(services: Any) -> list[tuple[str, str]]:
    """(slug, style LoRA name) of every synced brand with an active style LoRA."""
    from studio.services.views import SYSTEM

    found = []
    for summary in services.brands.list_brands(SYSTEM):
        brand = services.brands.get_brand(SYSTEM, summary.slug)
        for adapter in brand.adapters:
            if adapter.kind == "style" and adapter.active_version is not None:
                found.append((brand.slug, adapter.name))
                break
    return found


def measure(
    services: Any,
    slug: str,
    lora: str,
    samplers: tuple[str, ...],
    weights: tuple[float, ...],
    seeds: int,
    steps: int | None = None,
    guidance: dict[str, Any] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """{sampler: {weight: {mean_score, flag_rate, images}}} for one brand (same prompts and seeds)."""
    from studio.services.generation import GenerateInput
    from studio.services.views import SYSTEM

    table: dict[str, dict[str, dict[str, Any]]] = {}
    for sampler in samplers:
        table[sampler] = {}
        for weight in weights:
            scores: list[float] = []
            flags: list[bool] = []
            per_prompt: dict[str, list[float]] = {}
            for number, prompt in enumerate(PROMPTS):
                request = GenerateInput(
                    brand=slug,
                    prompt=prompt,
                    seed=BASE_SEED + 10 * number,
                    sampler=sampler,
                    steps=steps,
                    loras={lora: weight},
                    batch_size=seeds,
                    guidance=guidance,
                )
                result = services.generation.generate(SYSTEM, request)
                scores += [image.palette_score for image in result.images]
                per_prompt[prompt] = [image.palette_score for image in result.images]
                flags += [image.palette_flag for image in result.images]
            table[sampler][f"{weight:g}"] = {
                "mean_score": round(statistics.fmean(scores), 3),
                "flag_rate": round(sum(flags) / len(flags), 3),
                "images": len(scores),
                "by_prompt": per_prompt,
            }
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds per prompt (consecutive)")
    parser.add_argument("--samplers", default=",".join(SAMPLERS), help="comma-separated sampler names")
    parser.add_argument("--weights", default=",".join(f"{w:g}" for w in WEIGHTS), help="LoRA weights")
    parser.add_argument("--steps", type=int, default=None, help="denoising steps (default: the brand's)")
    parser.add_argument("--only", action="append", help="only this brand slug (repeatable)")
    parser.add_argument(
        "--guidance",
        default=None,
        help='Guidance fields as JSON, e.g. \'{"method": "cfg"}\' (default: each brand\'s default guidance)',
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args(argv)
    samplers = tuple(s.strip() for s in args.samplers.split(",") if s.strip())
    weights = tuple(float(w) for w in args.weights.split(","))
    guidance = json.loads(args.guidance) if args.guidance else None

    import torch
    from argon2 import PasswordHasher, profiles

    from studio.config import Settings
    from studio.services.container import build_services
    from studio.services.views import SYSTEM

    torch.set_num_threads(1)  # tiny model: one thread is fastest on a shared CPU
    started = time.perf_counter()
    figures: dict[str, Any] = {
        "metric": "palette score (share of pixels within CIEDE2000 15 of a brand colour), mean over images; "
        "flag rate: share of images below the brand's palette_threshold",
        "prompts": list(PROMPTS),
        "seeds_per_prompt": args.seeds,
        "steps": args.steps or "brand default",
        "guidance": guidance or "brand default",
        "brands": {},
    }
    with tempfile.TemporaryDirectory(prefix="demo-lora-shift-") as home:
        services = build_services(
            Settings.from_env({"STUDIO_HOME": home}),
            password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST),
        )
        try:
            services.users.add_user(SYSTEM, "admin", ["admin"], "benchmark only")  # the images' author
            services.brands.sync(SYSTEM, REPO_BRANDS)
            brands = [b for b in demo_brands(services) if not args.only or b[0] in args.only]
            if not brands:
                print("no demo brand with a style LoRA found", file=sys.stderr)
                return 1
            count = len(PROMPTS) * args.seeds
            steps = f"{args.steps} steps" if args.steps else "the brand's steps"
            print(f"{len(PROMPTS)} prompts × {args.seeds} seeds = {count} images per cell; {steps}")
            print(f"{'brand':8} {'sampler':9} " + " ".join(f"{'w=' + f'{w:g}':>17}" for w in weights))
            for slug, lora in brands:
                table = measure(services, slug, lora, samplers, weights, args.seeds, args.steps, guidance)
                figures["brands"][slug] = {"lora": lora, "samplers": table}
                for sampler, cells in table.items():
                    row = " ".join(
                        f"{c['mean_score']:>6.3f} (flag {c['flag_rate']:>4.0%})" for c in cells.values()
                    )
                    print(f"{slug:8} {sampler:9} {row}", flush=True)
        finally:
            services.close()
    low, high = f"{weights[0]:g}", f"{weights[-1]:g}"
    print(f"\nshift, weight {low} → {high} (mean palette score; smallest over samplers):")
    for slug, entry in figures["brands"].items():
        rises = {s: c[high]["mean_score"] - c[low]["mean_score"] for s, c in entry["samplers"].items()}
        worst = min(rises, key=rises.__getitem__)
        print(f"  {slug}: +{rises[worst]:.3f} at least ({worst}); " + ", ".join(
            f"{s} +{r:.3f}" for s, r in rises.items()
        ))  # fmt: skip
    figures["seconds"] = round(time.perf_counter() - started)
    print(f"{figures['seconds']} s")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
