"""benchmarks/gpu_check.py, the prepared GPU check (issue 14): its configs are the real architectures, and its
whole code path runs on the CPU with the tiny pipelines (``--tiny``) and prints every row with a figure."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
MEASURES = (
    "build (random init on the device)",
    "sampling 32², 2 steps",
    "LoRA train step r16, batch 1, 32², no checkpointing",
    "LoRA train step r16, batch 1, 32², gradient checkpointing",
    "brand switches, torch.compile + LoRA hot-swap",
)


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=170,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def _rows(table: str) -> dict[tuple[str, str], list[str]]:
    rows = {}
    for line in table.splitlines():
        if line.startswith("| ") and not line.startswith(("| family", "|---")):
            cells = [cell.strip() for cell in line.strip("|").split(" | ")]
            rows[(cells[0], cells[1])] = cells[2:]
    return rows


def test_full_size_configs_have_the_real_parameter_counts() -> None:
    """Built on the meta device (no memory): every component has the published model's exact size."""
    gpu_check = _script()
    expected = {
        "sdxl": {
            "unet": 2_567_463_684,
            "vae": 83_653_863,
            "text_encoder": 123_060_480,  # CLIP ViT-L/14
            "text_encoder_2": 694_659_840,  # OpenCLIP ViT-bigG/14, with projection
        },
        "flux": {
            "transformer": 11_901_408_320,
            "vae": 83_819_683,
            "text_encoder": 123_060_480,
            "text_encoder_2": 4_762_310_656,  # T5-XXL v1.1 encoder
        },
    }
    for family, build in (("sdxl", gpu_check.full_sdxl), ("flux", gpu_check.full_flux)):
        pipe = build("meta", torch.bfloat16)
        counts = {
            name: sum(p.numel() for p in module.parameters())
            for name, module in pipe.components.items()
            if isinstance(module, torch.nn.Module)
        }
        assert counts == expected[family], family
        dtypes = {p.dtype for module in pipe.components.values() if isinstance(module, torch.nn.Module)
                  for p in module.parameters()}  # fmt: skip
        assert dtypes == {torch.bfloat16}, family
    assert torch.get_default_dtype() == torch.float32  # restored after building


@pytest.mark.slow  # 20 s; the configs and the budget logic are checked in the default run
def test_tiny_run_prints_every_row_with_a_figure() -> None:
    done = _run("--tiny", "--steps", "2", "--train-steps", "1", "--cycles", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    table = done.stdout
    rows = _rows(table)
    assert set(rows) == {(family, measure) for family in ("sdxl", "flux") for measure in MEASURES}, table
    for (family, measure), (result, memory, notes) in rows.items():
        where = f"{family}: {measure}: {result}"
        assert re.search(r"\d", result), where
        assert not result.startswith(("error", "skipped", "not run")), where
        assert memory.startswith("n/a (CPU)"), where
        assert notes, where
    for family in ("sdxl", "flux"):
        assert rows[(family, MEASURES[1])][0].endswith(" it/s")
        assert rows[(family, MEASURES[2])][0].endswith(" s/step")
        assert rows[(family, MEASURES[3])][0].endswith(" s/step")
        result, _, notes = rows[(family, MEASURES[4])]
        assert re.fullmatch(r"4 switches, [\d.]+ ms/switch \(median\), 0 recompiles", result), result
        # the compiled graph reads the swapped weights: A changes the output, A again gives A's output,
        # and none gives the warm-up's (no LoRA) output
        found = re.search(
            r"output Δ A/none ([\d.e+-]+), B/A ([\d.e+-]+), A/A ([\d.e+-]+), none/warm-up ([\d.e+-]+)(?:;|$)",
            notes,
        )
        assert found, notes
        a_none, b_a, a_a, none_warm = (float(x) for x in found.groups())
        assert a_none > 0 and b_a > 0 and a_a == 0 and none_warm == 0, notes
    trainers = {rows[(f, MEASURES[2])][2].split(";")[0] for f in ("sdxl", "flux")}
    assert trainers == {"SDXLTrainer", "FluxTrainer"}
    assert "--tiny" in table and "not figures for the README" in table
    assert re.search(r"Total wall time: \d+ s \(budget 540 s\)", table)


def test_sections_past_the_budget_are_skipped_and_say_so() -> None:
    gpu_check = _script()
    check = gpu_check.Check(
        gpu_check.parse_args(["--tiny", "--only", "flux", "--budget", "0", "--steps", "2"])
    )
    check.run()
    table = gpu_check.table(check)
    rows = _rows(table)
    assert {family for family, _ in rows} == {"flux"}, table
    assert rows[("flux", MEASURES[0])][0].startswith("skipped: time budget ("), table
    for measure in MEASURES[1:]:
        assert rows[("flux", measure)][0] == "not run: the build was skipped (time budget)", table
    assert "Total wall time" in table
