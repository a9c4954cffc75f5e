"""What ``python -m studio.toyworld.evaluate`` prints: the CFG 1 / 5 / 9 table with both colour namings and
issue 18's checks, issue 3's targets, and the table recorded for each seed of the recipe."""

from __future__ import annotations

import json

from .evaluate import HSV_ASPECTS, TARGETS, guided_checks


def format_cfg_table(table: dict[str, dict], title: str = "") -> str:
    """The CFG 1 / 5 / 9 table as text: both namings of background and colour, shape, position."""
    lines = [title] if title else []
    lines.append(
        "  CFG | background  colour (nearest) | background  colour (HSV) | shape  position | mean HSV"
    )
    for name, f in table.items():
        lines.append(
            f"  {name[3:]:>3} |      {f['background']:.3f}   {f['colour']:.3f}           |"
            f"      {f['background_hsv']:.3f}   {f['colour_hsv']:.3f}       |"
            f" {f['shape']:.3f}  {f['position']:.3f}    | {f['mean_hsv']:.3f}"
        )
    return "\n".join(lines)


def print_table(r: dict) -> None:
    """The CFG 1 / 5 / 9 table with both colour namings, and issue 18's targets (HSV naming)."""
    table = {k: r[k] for k in ("cfg1", "cfg5", "cfg9") if k in r}
    if r.get("guidance"):
        print(f"guidance: {json.dumps(r['guidance'])}")
    print(
        f"held-out canonical prompts: {r['prompts']} x {len(r['seeds'])} seeds "
        f"{tuple(r['seeds'])} = {r['cfg5']['n']} images per scale, 20 steps"
    )
    print(format_cfg_table(table))
    for text, met in guided_checks(table):
        print(f"  {'ok ' if met else 'MISS'} {text} (HSV naming)")
    for name, f in table.items():
        hsv = {k: f["confusions"][k] for k in HSV_ASPECTS if f["confusions"][k]}
        print(f"  HSV colour misses at {name}: {json.dumps(hsv)}")


def print_report(r: dict) -> None:
    c5, c1 = r["cfg5"], r["cfg1"]
    print_table(r)
    if "negative_prompt" not in r:
        print(f"evaluation took {r['eval_seconds']} s")
        return
    print("issue 3's targets (nearest-colour naming):")
    for k, target in TARGETS.items():
        mark = "ok " if c5[k] >= target else "MISS"
        print(f"  {mark} {k:<10} CFG5 {c5[k]:.3f} (target >= {target:.2f})   CFG1 {c1[k]:.3f}")
    print(
        f"  {'ok ' if r['cfg5_beats_cfg1'] else 'MISS'} adherence mean "
        f"CFG5 {c5['mean']:.3f} > CFG1 {c1['mean']:.3f}"
    )
    print(f"  confusions at CFG5: {json.dumps(c5['confusions'])}")
    neg = r["negative_prompt"]
    if neg.get("never_chosen"):
        print(f"  note: on open prompts the model never picks {neg['never_chosen']} (no share to cut)")
    print(
        f"  {'ok ' if neg.get('halved_where_present', neg['all_halved']) else 'MISS'} negative prompt "
        f"'<bg> background' on {neg['prompts']} "
        f"background-open prompts: share without {neg['without_negative']}, with {neg['with_negative']}, "
        f"ratio {neg['ratio']} (target <= 0.5 each)"
    )
    if "controlnet" in r:
        cn = r["controlnet"]
        print(
            f"  {'ok ' if cn['within_8px'] >= 0.8 else 'MISS'} controlnet: centroid within 8 px of the "
            "template's: "
            f"{cn['within_8px']:.3f} of {cn['cases']} (target >= 0.80), median {cn['median_px']} px, "
            f"colour {cn['colour']:.3f}"
        )
    sp = r["speed"]
    print(
        f"  {'ok ' if sp['image_s_median'] <= 1.0 else 'MISS'} 64x64, CFG 5, 20 steps: "
        f"{sp['image_s_median']:.3f} s median (target <= 1.0)"
    )
    print(
        f"  {'ok ' if sp['load_s_median'] <= 1.0 else 'MISS'} load: {sp['load_s_median']:.3f} s median "
        f"(target <= 1.0)"
    )
    print(f"  {'ok ' if r['deterministic'] else 'MISS'} same seed -> same pixels")
    print(f"evaluation took {r['eval_seconds']} s")


def print_seed_tables(tables: list[dict]) -> None:
    """Each recorded seed of the recipe: its table and issue 18's checks (see :mod:`.seed_tables`)."""
    for entry in tables:
        guidance = json.dumps(entry["guidance"]) if entry.get("guidance") else "plain CFG"
        title = f"recipe seed {entry['seed']} (recorded; eval seeds {entry['eval_seeds']}; {guidance}):"
        print(format_cfg_table(entry["table"], title))
        for text, met in guided_checks(entry["table"]):
            print(f"  {'ok ' if met else 'MISS'} {text} (HSV naming)")
