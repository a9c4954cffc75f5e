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

The settings and their defaults are in ``recipe.py``; the stages in ``train_data.py`` (vae, latents, captions)
and ``train_unet.py`` (unet, detail, controlnet); checkpoints, EMA and the schedule in ``train_loop.py``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

from . import world
from .recipe import STAGES, parse_args
from .train_data import stage_latents, stage_vae
from .train_loop import build_facts, log, save_build_facts
from .train_unet import UnetPhase, stage_controlnet, stage_unet, write_scheduler_and_index
from .vocab import build_tokenizer, check_tokenizer


def stage_tokenizer(out: Path, args) -> None:
    tok = build_tokenizer(out / "tokenizer", args.max_length)
    from transformers import CLIPTokenizer

    again = CLIPTokenizer.from_pretrained(str(out / "tokenizer"))
    check_tokenizer(again)
    assert again.model_max_length == args.max_length and len(again) == len(tok), "round trip changed it"
    log(f"tokenizer: {len(again)} tokens, every vocabulary word is one token, {args.max_length} per caption")


def stage_assemble(out: Path, work: Path, args) -> None:
    write_scheduler_and_index(out)
    facts = build_facts(work)
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
        "unet": lambda: build_facts(work).get("unet", {}).get("steps", 0) >= args.unet_steps,
        "detail": lambda: build_facts(work).get("detail", {}).get("steps", 0) >= args.detail_steps,
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
            facts = build_facts(work)
            facts["latents_seconds"] = round(time.time() - t0)
            save_build_facts(work, facts)
        elif s in ("unet", "detail"):
            if args.force and s == "unet":
                (work / "unet_state.safetensors").unlink(missing_ok=True)
                (work / "curve.jsonl").unlink(missing_ok=True)
            if args.force or s == "unet":  # the detail phase starts over (from the unet phase's new weights)
                (work / "detail_state.safetensors").unlink(missing_ok=True)
                facts = build_facts(work)
                facts.pop("detail", None)
                save_build_facts(work, facts)
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
