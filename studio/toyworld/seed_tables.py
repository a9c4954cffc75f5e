"""The CFG 1 / 5 / 9 table of each seed the recipe was built with, kept in the shipped ``toyworld.json``.

Issue 18 asks that the recipe, trained from scratch with two seeds, meets its targets with both. Only one
build ships (the folder stays under 30 MB), so each build's table is recorded where the shipped model is:
the ``assemble`` stage records its own, and ``python -m studio.toyworld.evaluate --model OTHER_BUILD
--record-into studio/toyworld/weights`` adds another build's (measured afresh). ``evaluate`` prints them all.
"""

from __future__ import annotations

import json
from pathlib import Path

from studio.storage import atomic_write_text

KEY = "seed_tables"
SCALES = ("cfg1", "cfg5", "cfg9")
KEPT = ("background", "colour", "background_hsv", "colour_hsv", "shape", "position", "mean", "mean_hsv", "n")


def compact(report: dict) -> dict:
    """A :func:`~studio.toyworld.evaluate.cfg_table` (or report) without its confusion lists."""
    return {s: {k: report[s][k] for k in KEPT if k in report[s]} for s in SCALES if s in report}


def record(model_dir: Path, seed: int, guidance: dict | None, report: dict, eval_seeds: list[int]) -> None:
    """Store (or replace) ``seed``'s table in ``model_dir/toyworld.json``."""
    path = model_dir / "toyworld.json"
    facts = json.loads(path.read_text()) if path.exists() else {}
    tables = [t for t in facts.get(KEY, []) if t.get("seed") != seed]
    tables.append({"seed": seed, "guidance": guidance, "eval_seeds": eval_seeds, "table": compact(report)})
    facts[KEY] = sorted(tables, key=lambda t: t["seed"])
    atomic_write_text(path, json.dumps(facts, indent=2) + "\n")


def recorded(model_dir: Path) -> list[dict]:
    """The tables recorded in ``model_dir/toyworld.json`` (oldest seed first)."""
    path = model_dir / "toyworld.json"
    return json.loads(path.read_text()).get(KEY, []) if path.exists() else []
