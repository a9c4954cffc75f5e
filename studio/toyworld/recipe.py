"""The recipe of the toy-world model family: ``train``'s settings and their defaults (the shipped build's).

``python -m studio.toyworld.train --help`` prints them. The defaults are what ``studio/toyworld/weights`` was
built with (its ``toyworld.json`` records the command), so a rebuild from scratch needs only ``--out`` and
``--seed``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .vocab import MAX_LENGTH

STAGES = ("tokenizer", "vae", "latents", "unet", "detail", "controlnet", "assemble")

#: the sampling guidance the recipe recommends (benchmarks/guidance_candidates.py chose it): FDG, low
#: frequencies at scale 2, CFG-Zero*'s optimised scale, guidance only in the first 40% of the steps (the
#: high-noise steps fix colour and layout; guided late steps bow squares' sides in, so they read as circles)
RECIPE_GUIDANCE = {"method": "fdg", "fdg_low_scale": 2.0, "optimized_scale": True, "stop": 0.4}


def parse_args(argv: list[str] | None = None, description: str | None = None) -> argparse.Namespace:
    """``train``'s command line (``argv`` None: ``sys.argv``); ``description``: the ``--help`` text."""
    ap = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--out", required=True, type=Path, help="the diffusers-format folder to write")
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (latents, checkpoints)")
    ap.add_argument(
        "--stages", default=",".join(STAGES), help="comma-separated subset of " + ",".join(STAGES)
    )
    ap.add_argument("--force", action="store_true", help="redo stages whose output exists")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", type=int, default=8000, help="training scenes (latents cached once)")
    ap.add_argument("--vae-images", type=int, default=4096)
    ap.add_argument("--vae-steps", type=int, default=4000)
    ap.add_argument("--vae-lr", type=float, default=1e-3)
    ap.add_argument(
        "--vae-crop", type=int, default=24, help="training crop size (crops sit around the shape)"
    )
    ap.add_argument("--vae-batch", type=int, default=32)
    ap.add_argument("--vae-continue", action="store_true", help="start the vae stage from the saved vae")
    ap.add_argument("--unet-steps", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--ema", type=float, default=0.995)
    ap.add_argument("--cfg-drop", type=float, default=0.1)
    ap.add_argument(
        "--max-length",
        type=int,
        default=MAX_LENGTH,
        help="tokens per caption, start and end tokens included (the text encoder reads as many)",
    )
    ap.add_argument(
        "--filler-share",
        type=float,
        default=0.25,
        help="share of captions with a made-up word (3-16 letters) before or after them, as a brand's "
        "trigger word would be: trains the tokens past 16 of a longer --max-length",
    )
    ap.add_argument(
        "--fg-weight", type=float, default=8.0, help="extra loss weight on the latent cells around the shape"
    )
    ap.add_argument("--checkpoint-every", type=int, default=250)
    ap.add_argument(
        "--curve-every", type=int, default=1000, help="steps between learning-curve points; 0: none"
    )
    ap.add_argument(
        "--t-power", type=float, default=0.6, help="timesteps drawn as T*u**p (p<1: more high noise)"
    )
    ap.add_argument(
        "--top-t-share",
        type=float,
        default=0.3,
        help="share of timesteps drawn from the top 2.5%% (pure noise)",
    )
    ap.add_argument("--detail-steps", type=int, default=1000, help="steps of the detail phase (0: none)")
    ap.add_argument("--detail-lr", type=float, default=3e-4)
    ap.add_argument("--detail-t-power", type=float, default=1.0)
    ap.add_argument("--detail-top-t-share", type=float, default=0.1)
    ap.add_argument("--init-from", type=Path, default=None, help="start the unet stage from these weights")
    ap.add_argument("--init-step", type=int, default=0, help="the step count those weights stand for")
    ap.add_argument("--cn-steps", type=int, default=250)
    ap.add_argument("--cn-lr", type=float, default=1e-3)
    ap.add_argument(
        "--guidance",
        default=json.dumps(RECIPE_GUIDANCE),
        help="the sampling guidance recorded as the model's recommendation (JSON of Guidance fields)",
    )
    ap.add_argument(
        "--grid",
        type=Path,
        default=None,
        help="where the assemble stage draws the prompts x CFG grid (default: the README's, for the shipped "
        "folder; else <out>-cfg-grid.png)",
    )
    return ap.parse_args(argv)
