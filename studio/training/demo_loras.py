"""Train the demo brands' style LoRAs on the embedded toy-world model, and measure their palette shift.

    python -m studio.training.demo_loras [--brands brands] [--only SLUG] [--steps N] [--eval-only]

For each ``brands/<slug>/brand.toml`` with a style LoRA whose palette uses toy-world colour names, it renders
training images from the toy world in the brand's palette (its background colour, shapes in its other
colours), captions them with the trigger word (most captions leave the colours out, so the trigger word
carries the palette), trains the LoRA with :func:`~studio.training.families.make_trainer` on the default
preset, and writes the ``.safetensors`` file the brand.toml names (atomically). Then it measures:

**palette score** (:func:`studio.palette.palette_score`: the share of an image's pixels whose dominant colour
is within CIEDE2000 15 of a brand palette colour) of images made from neutral prompts ``a {shape},
{position}, {trigger}`` (3 shapes × 5 positions × 2 seeds, CFG 5, 20 steps), with the LoRA at weight 0 and
at weight 1, plus the share of images at or above the brand's palette threshold. The figures are printed
and written next to the LoRA as ``<name>.metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.colours import BACKGROUND_COLOURS, FOREGROUND_COLOURS
from studio.storage import atomic_copy, atomic_write_text

REPO_BRANDS = Path(__file__).resolve().parents[2] / "brands"
IMAGES_PER_BRAND = 48
EVAL_SEEDS = (101, 202)
#: Six times the default preset: a demo brand's LoRA should show its palette clearly. (Attention-only LoRAs
#: barely moved the embedded model, which also reads the caption through a pooled-text path; the trainer's
#: default targets now include that path's time projections, see ``default_lora_targets``.)
DEMO_STEPS = 1800


@dataclass(frozen=True)
class DemoLora:
    """One demo brand's style LoRA to train."""

    slug: str
    folder: Path
    name: str
    file: str
    trigger: str
    palette: tuple[str, ...]
    threshold: float
    backgrounds: tuple[str, ...]
    colours: tuple[str, ...]


def find_demo_loras(brands_dir: Path) -> list[DemoLora]:
    """Style LoRAs of brands whose palettes are toy-world colour names (others cannot be drawn)."""
    from studio.services.brand_files import find_brand_files, parse_brand_file

    found = []
    for path in find_brand_files(brands_dir):
        spec = parse_brand_file(path)
        by_hex = {v: k for k, v in {**FOREGROUND_COLOURS, **BACKGROUND_COLOURS}.items()}
        names = [by_hex.get(p.lower(), p) for p in spec.palette]  # palettes are normalised to hex
        backgrounds = tuple(p for p in names if p in BACKGROUND_COLOURS)
        colours = tuple(p for p in names if p in FOREGROUND_COLOURS)
        for lora in spec.loras:
            if lora.kind == "style" and lora.trigger_words and backgrounds and colours:
                found.append(
                    DemoLora(
                        slug=spec.slug,
                        folder=path.parent,
                        name=lora.name,
                        file=lora.file,
                        trigger=lora.trigger_words[0],
                        palette=tuple(spec.palette),
                        threshold=spec.palette_threshold if spec.palette_threshold is not None else 0.5,
                        backgrounds=backgrounds,
                        colours=colours,
                    )
                )
    return found


def training_images(demo: DemoLora, folder: Path, count: int = IMAGES_PER_BRAND, seed: int = 0) -> list[Any]:
    """Toy-world scenes in the brand's palette, captioned with its trigger word."""
    from studio.toyworld import world
    from studio.training.trainer import TrainItem

    rng = random.Random(f"{demo.slug}:{seed}")
    folder.mkdir(parents=True, exist_ok=True)
    forms = (
        "a {shape}, {position}, {trigger}",
        "a {shape}, {trigger}",
        "{trigger}",
        "{trigger}, a {shape} in the {position}",
        "a {colour} {shape} on a {background} background, {position}, {trigger}",
    )
    items = []
    for number in range(count):
        scene = world.Scene(
            colour=rng.choice(demo.colours),
            shape=rng.choice(world.SHAPES),
            background=rng.choice(demo.backgrounds),
            position=rng.choice(world.POSITION_NAMES),
            size=rng.choice(world.SIZES),
            dx=rng.randint(-world.JITTER, world.JITTER),
            dy=rng.randint(-world.JITTER, world.JITTER),
        )
        caption = rng.choice(forms).format(
            shape=scene.shape, position=scene.position, colour=scene.colour, background=scene.background,
            trigger=demo.trigger,
        )  # fmt: skip
        path = folder / f"{demo.slug}-{number:03d}.png"
        world.render(scene).save(path)
        items.append(TrainItem(path, caption))
    return items


def eval_prompts(trigger: str) -> list[str]:
    from studio.toyworld import world

    return [
        f"a {shape}, {position}, {trigger}" for shape in world.SHAPES for position in world.POSITION_NAMES
    ]


def palette_shift(model: str, lora: Path, demo: DemoLora) -> dict[str, Any]:
    """Palette score of neutral prompts with the LoRA at weight 0 and 1 (same prompts and seeds)."""
    import torch
    from diffusers import StableDiffusionPipeline

    from studio.engine.models import resolve_model
    from studio.palette import palette_score

    pipe = StableDiffusionPipeline.from_pretrained(
        str(resolve_model(model).path), safety_checker=None, requires_safety_checker=False
    )
    pipe.set_progress_bar_config(disable=True)
    pipe.load_lora_weights(str(lora.parent), weight_name=lora.name, adapter_name="brand")
    prompts = eval_prompts(demo.trigger)
    result: dict[str, Any] = {
        "metric": "palette score (share of pixels within CIEDE2000 15 of a brand colour), mean over images",
        "prompts": "a {shape}, {position}, " + demo.trigger,
        "images_per_weight": len(prompts) * len(EVAL_SEEDS),
        "cfg": 5.0,
        "steps": 20,
    }
    for weight in (0.0, 1.0):
        pipe.set_adapters(["brand"], adapter_weights=[weight])
        scores = []
        for seed in EVAL_SEEDS:
            images = pipe(
                prompts, num_inference_steps=20, guidance_scale=5.0, height=64, width=64,
                generator=[torch.Generator().manual_seed(seed + i) for i in range(len(prompts))],
            ).images  # fmt: skip
            scores += [palette_score(img, demo.palette, demo.threshold).score for img in images]
        result[f"weight_{weight:g}"] = {
            "mean_score": round(sum(scores) / len(scores), 3),
            "on_palette_share": round(sum(s >= demo.threshold for s in scores) / len(scores), 3),
        }
    return result


def train_one(demo: DemoLora, model: str, work: Path, steps: int | None) -> Path:
    """Train ``demo``'s LoRA; returns the final checkpoint's LoRA file."""
    from studio.training.config import build_config
    from studio.training.families import make_trainer

    items = training_images(demo, work / "images")
    config = build_config(
        model, preset="default", kind="style", trigger=demo.trigger,
        overrides={"steps": steps, "sample_prompts": ["{trigger}", "a circle, {trigger}"],
                   "sample_seeds": [1]},
    )  # fmt: skip

    class Print:
        def on_status(self, message: str) -> None:
            print(f"  {demo.slug}: {message}", flush=True)

        def on_step(self, step: int, loss: float) -> None:
            if step % 50 == 0:
                print(f"  {demo.slug}: step {step}/{config.steps} loss {loss:.4f}", flush=True)

        def on_checkpoint(self, checkpoint: Any) -> None:
            pass

    trainer = make_trainer(config, items, out_dir=work / "run", cache_dir=work / "cache", reporter=Print())
    result = trainer.train()
    assert result.final is not None
    print(f"  {demo.slug}: {result.steps} steps in {result.seconds:.0f} s, final loss {result.loss:.4f}")
    return result.final.lora_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--brands", type=Path, default=REPO_BRANDS, help="folder of brand folders")
    parser.add_argument("--only", action="append", help="train only this brand slug (repeatable)")
    parser.add_argument("--model", default="embedded:toyworld", help="base model (default: the embedded one)")
    parser.add_argument("--steps", type=int, default=DEMO_STEPS, help="training steps (default %(default)s)")
    parser.add_argument("--eval-only", action="store_true", help="measure the existing LoRA files only")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)  # tiny model: one thread is fastest on a shared CPU
    demos = [d for d in find_demo_loras(args.brands) if not args.only or d.slug in args.only]
    if not demos:
        print("no demo brand with a style LoRA and a toy-world palette found", file=sys.stderr)
        return 1
    for demo in demos:
        target = demo.folder / demo.file
        started = time.perf_counter()
        if not args.eval_only:
            palette = ", ".join(demo.palette)
            print(f"{demo.slug}: training {demo.name} (trigger {demo.trigger!r}, palette {palette})")
            with tempfile.TemporaryDirectory(prefix=f"demo-lora-{demo.slug}-") as work:
                lora = train_one(demo, args.model, Path(work), args.steps)
                atomic_copy(lora, target)
            print(f"  wrote {target} ({target.stat().st_size // 1024} KiB)")
        metrics = palette_shift(args.model, target, demo)
        if not args.eval_only:
            metrics["train_steps"] = args.steps
        metrics["train_and_eval_seconds"] = round(time.perf_counter() - started)
        atomic_write_text(target.with_suffix(".metrics.json"), json.dumps(metrics, indent=2) + "\n")
        w0, w1 = metrics["weight_0"], metrics["weight_1"]
        print(
            f"  palette score, LoRA weight 0 → 1: {w0['mean_score']:.3f} → {w1['mean_score']:.3f} "
            f"(on-palette images {w0['on_palette_share']:.0%} → {w1['on_palette_share']:.0%}, "
            f"{metrics['images_per_weight']} images each)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
