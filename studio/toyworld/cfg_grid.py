"""The picture of prompts × CFG that the README's model section shows, drawn by the build.

    python -m studio.toyworld.cfg_grid [--model DIR] [--out docs/images/toyworld-cfg-grid.png]

Rows are held-out canonical prompts (never trained on), one evaluation seed each; columns are CFG 1, then
CFG 5 and 9 with plain classifier-free guidance and with the model's recommended sampling guidance
(``guidance`` in ``toyworld.json``), so the colour drift of plain CFG and its cure sit side by side. The
train command's ``assemble`` stage writes it (``--grid``).
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path
from typing import Any

from . import world

REPO_GRID = Path(__file__).resolve().parents[2] / "docs" / "images" / "toyworld-cfg-grid.png"
#: held-out combinations: every colour, shape and background (teal and gray are the ones that drift)
GRID_COMBOS = (
    ("red", "circle", "teal", "top"),
    ("green", "triangle", "gray", "center"),
    ("blue", "square", "white", "right"),
    ("yellow", "circle", "black", "left"),
    ("orange", "square", "teal", "top"),
    ("purple", "triangle", "gray", "top"),
)
GRID_SEED = 1001
CELL, LABEL_W, HEADER_H = 128, 330, 40


def draw_grid(
    model_dir: Path,
    out: Path,
    guidance: dict | None = None,
    combos: tuple[tuple[str, str, str, str], ...] = GRID_COMBOS,
    steps: int = 20,
    pipe: Any = None,
) -> Path:
    """Render ``combos`` × CFG columns (``steps`` Euler steps) to ``out`` (atomically) and return it.
    ``pipe``: the model's pipeline when the caller has it loaded already."""
    from PIL import Image, ImageDraw, ImageFont

    from studio.engine.guidance import guided
    from studio.engine.guidance_settings import PLAIN, Guidance
    from studio.storage import atomic_write_bytes

    from .evaluate import generate, load_pipeline

    pipe = pipe or load_pipeline(model_dir)
    chosen = Guidance.from_dict(guidance) if guidance else None
    columns: list[tuple[str, float, Guidance]] = [("CFG 1", 1.0, PLAIN)]
    for scale in (5.0, 9.0):
        columns.append((f"CFG {scale:g}", scale, PLAIN))
        if chosen is not None:
            columns.append((f"CFG {scale:g} + {chosen.method}", scale, chosen))
    prompts = [world.canonical_caption(*c) for c in combos]
    width, height = LABEL_W + CELL * len(columns), HEADER_H + CELL * len(prompts)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    pen = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    for col, (title, scale, how) in enumerate(columns):
        pen.text((LABEL_W + col * CELL + 6, 12), title, fill=(0, 0, 0), font=font)
        with guided(pipe, how, scale):
            images = generate(pipe, prompts, [GRID_SEED] * len(prompts), cfg=scale, steps=steps)
        for row, pixels in enumerate(images):
            cell = Image.fromarray(pixels).resize((CELL, CELL), Image.NEAREST)
            sheet.paste(cell, (LABEL_W + col * CELL, HEADER_H + row * CELL))
    for row, prompt in enumerate(prompts):
        pen.text((8, HEADER_H + row * CELL + CELL // 2 - 8), prompt, fill=(0, 0, 0), font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, buffer.getvalue())
    return out


def main(argv: list[str] | None = None) -> int:
    from studio.engine.model_info import recommended_guidance

    from . import MODEL_DIR

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=MODEL_DIR, help="model folder (default: the shipped one)")
    ap.add_argument("--out", type=Path, default=REPO_GRID, help="the PNG to write")
    args = ap.parse_args(argv)
    path = draw_grid(args.model, args.out, recommended_guidance(args.model))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
