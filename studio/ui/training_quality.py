"""The Training tab's quality gate, as HTML: every checkpoint's scores in a table with the best one marked,
and the chosen checkpoint's images without and with the LoRA side by side (``studio.training.quality`` makes
the numbers; the images are links that only admins can open, see :mod:`studio.ui.file_access`)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from studio.services.training_views import CheckpointView, JobView
from studio.ui.file_access import training_link

#: the tab's own styles: sample captions wrap (never cut), and the quality grid's images stay sharp
TAB_CSS = """<style>
#training-samples .caption-label { white-space: normal; max-width: 100%; overflow: visible }
.quality-gate table { border-collapse: collapse; margin: 4px 0 10px }
.quality-gate th, .quality-gate td { padding: 3px 10px; text-align: left; vertical-align: top }
.quality-gate img { width: 128px; height: 128px; object-fit: contain; image-rendering: pixelated;
  border: 1px solid #8886; border-radius: 4px; display: block }
.quality-gate .best { font-weight: 600 }
.quality-gate .worse { color: #b91c1c }
</style>"""
#: the columns of the quality grid: (image set, heading)
GRID_COLUMNS = (("base", "no LoRA"), ("lora", "with LoRA"), ("lora_plain", "with LoRA, no trigger word"))
QUALITY_HELP = (
    "Each checkpoint is scored on the job's fixed prompts and seeds, with and without the LoRA: "
    "<b>palette</b> (share of pixels on the brand palette), <b>adherence</b> (shape, colour and "
    "background the prompt names, read back by the embedded model's classifier; n/a on other models) and "
    "the <b>trigger word's effect</b> (palette with the LoRA, with the trigger minus without). ★ marks the "
    "best checkpoint: the highest palette score among those that keep adherence."
)


def _score(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.2f}"


def quality_rows(job: JobView) -> list[list[str]]:
    """The quality table: step, palette no LoRA → LoRA, adherence no LoRA → LoRA, trigger effect, mark."""
    rows = []
    for ckpt in job.checkpoints:
        q = ckpt.quality
        if not q or "palette" not in q:
            note = q.get("error", "not scored") if q else "not scored (queued before the quality gate)"
            rows.append([str(ckpt.step), "—", "—", "—", note])
            continue
        adhere = q.get("adherence")
        trigger = q.get("trigger") or {}
        marks = []
        if ckpt.step == job.best_step:
            marks.append("★ best")
        if ckpt.palette_drop:
            marks.append("⚠ lowers the palette score")
        rows.append(
            [
                str(ckpt.step),
                f"{_score(q['palette']['base'])} → {_score(q['palette']['lora'])}",
                "n/a" if adhere is None else f"{_score(adhere['base'])} → {_score(adhere['lora'])}",
                f"{_score(trigger.get('with'))} vs {_score(trigger.get('without'))} "
                f"({float(trigger.get('effect', 0)):+.2f})",
                " · ".join(marks),
            ]
        )
    return rows


def _image(job_id: int, step: int, image_set: str, index: int, path: Path | None) -> str:
    if path is None:
        return "—"
    src = html.escape(training_link(job_id, step, image_set, index, path.name))
    return f'<img src="{src}" alt="{html.escape(path.stem)}">'


def quality_html(job: JobView, step: int | None) -> str:
    """The quality gate of a job: the scores table (every checkpoint) and, for checkpoint ``step``, the
    images without and with the LoRA side by side, one row per prompt and seed."""
    esc = html.escape
    if not job.checkpoints:
        return f'<div class="quality-gate"><em>No checkpoint yet.</em> {QUALITY_HELP}</div>'
    head = "".join(f"<th>{h}</th>" for h in ("step", "palette (no LoRA → LoRA)", "adherence",
                                              "trigger (with vs without)", ""))  # fmt: skip
    body = "".join(
        f'<tr class="{"best" if row[0] == str(job.best_step) else ""}">'
        + "".join(f'<td class="{"worse" if "⚠" in c else ""}">{esc(c)}</td>' for c in row)
        + "</tr>"
        for row in quality_rows(job)
    )
    best = f"Best checkpoint: step {job.best_step}." if job.best_step is not None else (
        "No checkpoint keeps prompt adherence, so none is marked best."
        if any(c.quality for c in job.checkpoints) else ""
    )  # fmt: skip
    chosen = next((c for c in job.checkpoints if c.step == step), job.checkpoints[-1])
    grid = quality_grid(chosen, job.id)
    return (
        f'<div class="quality-gate"><p>{QUALITY_HELP}</p>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><p>{esc(best)}</p>{grid}</div>"
    )


def _nth(paths: tuple[Path, ...], index: int) -> Path | None:
    return paths[index] if index < len(paths) else None


def quality_grid(ckpt: CheckpointView, job_id: int) -> str:
    """One row per prompt and seed: the image without the LoRA next to the ones with it."""
    esc = html.escape
    images, q = ckpt.quality_images, ckpt.quality or {}
    if not images:
        return f"<p><em>Step {ckpt.step} has no quality images.</em></p>"
    prompts, seeds = list(q.get("prompts") or []), list(q.get("seeds") or [])
    count = len(images.get("lora", ()))
    header = "".join(f"<th>{esc(title)}</th>" for _, title in GRID_COLUMNS)
    rows = []
    for i in range(count):
        prompt = prompts[i % len(prompts)] if prompts else ""
        seed = seeds[i // len(prompts)] if prompts and seeds and i // len(prompts) < len(seeds) else "?"
        cells = "".join(
            f"<td>{_image(job_id, ckpt.step, key, i, _nth(images.get(key, ()), i))}</td>"
            for key, _ in GRID_COLUMNS
        )
        rows.append(
            f"<tr><td><code>{esc(prompt) or '(empty)'}</code><br>seed {esc(str(seed))}</td>{cells}</tr>"
        )
    return (
        f"<p><b>Step {ckpt.step}</b>: the same prompts and seeds without and with the LoRA</p>"
        f"<table><thead><tr><th>prompt</th>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )
