"""What a training run takes and gives back: items, checkpoints, results, the progress reporter (no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from studio.training.config import TrainConfig


class TrainingStopped(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by a reporter to stop training (``reason``: cancelled or lost)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class TrainItem:
    """One training image and its caption."""

    path: Path
    caption: str
    sha256: str | None = None


@dataclass(frozen=True)
class Checkpoint:
    """Files written at ``step`` (paths absolute)."""

    step: int
    lora_path: Path
    sha256: str
    state_path: Path
    sample_paths: tuple[Path, ...]
    loss: float | None
    #: the quality gate's images: lora, lora_plain, base, base_plain (see LoraTrainer.quality_images)
    quality_paths: dict[str, tuple[Path, ...]] | None = None


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced."""

    steps: int
    final: Checkpoint | None
    seconds: float
    loss: float | None
    config: TrainConfig


class Reporter(Protocol):
    """Receives progress; raising :class:`TrainingStopped` from ``on_step`` stops the run."""

    def on_status(self, message: str) -> None: ...

    def on_step(self, step: int, loss: float) -> None: ...

    def on_checkpoint(self, checkpoint: Checkpoint) -> None: ...


class NullReporter:
    """Ignores everything (benchmarks, scripts)."""

    def on_status(self, message: str) -> None:
        pass

    def on_step(self, step: int, loss: float) -> None:
        pass

    def on_checkpoint(self, checkpoint: Checkpoint) -> None:
        pass
