"""The LoRA quality gate: a checkpoint's images scored against the brand, with and without the LoRA.

No torch here: the worker scores, the services read the rule (:func:`best_step`, :func:`palette_drop`).

The trainer draws the job's fixed sample prompts at its sample seeds four ways
(:meth:`studio.training.trainer.LoraTrainer.quality_images`): with the LoRA, with and without the trigger
word (``lora``, ``lora_plain``), and with the LoRA disabled (``base``, ``base_plain``: drawn once per job).
:class:`Scorer` turns them into the numbers stored with the checkpoint:

* **palette**: the mean palette score (:func:`studio.palette.palette_score`, the share of pixels within
  CIEDE2000 15 of a brand colour) of the prompts with the trigger, ``base`` (no LoRA) and ``lora``;
* **adherence**: on the embedded toy-world model, the share of what the prompts name (shape, colour,
  background) that :func:`studio.toyworld.classify.classify` reads back, ``base`` and ``lora``. Other models
  have no classifier here: ``None``, shown as "n/a" (never a made-up number);
* **trigger**: the palette score with the LoRA, with the trigger word against without it; ``effect`` is the
  difference (what the word itself adds).

**The best checkpoint** (:func:`best_step`) has the highest palette score with the LoRA among the
checkpoints that do not lower adherence (``lora >= base``; any checkpoint where adherence is n/a); on a tie,
the earliest step. :func:`palette_drop` says whether a checkpoint lowers the palette score against no LoRA
(by :data:`PALETTE_TOLERANCE` or more), which publishing asks the admin to confirm.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: the embedded model, the one model with a classifier that reads its images back
EMBEDDED_MODEL = "embedded:toyworld"
#: what adherence checks of a prompt (the classifier also reads the position; sample prompts rarely name it)
ADHERENCE_KEYS = ("shape", "colour", "background")
#: a palette score lower by less than this is no drop: below the 2 decimals shown, it is noise (a few pixels)
PALETTE_TOLERANCE = 0.01
#: the image sets of a checkpoint, in the order the trainer draws them
IMAGE_SETS = ("lora", "lora_plain", "base", "base_plain")


def has_classifier(base_model: str) -> bool:
    """Whether prompt adherence can be measured on ``base_model`` (the embedded toy-world model only)."""
    return str(base_model).strip().lower() == EMBEDDED_MODEL


def prompt_targets(prompt: str) -> dict[str, str]:
    """What a prompt names that the classifier reads: shape, colour (of the shape) and background.

    ``a red circle on a teal background`` → shape circle, colour red, background teal. A background is a
    background word right before "background"; a colour is a shape colour anywhere else.
    """
    from studio.toyworld import world

    words = [w.strip(".,;:!?()").lower() for w in prompt.split()]
    found: dict[str, str] = {}
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        if following == "background" and word in world.BACKGROUNDS:
            found.setdefault("background", word)
        elif word in world.SHAPES:
            found.setdefault("shape", word)
        elif word in world.FG_COLOURS:
            found.setdefault("colour", word)
    return found


def adherence(paths: Sequence[Path], prompts: Sequence[str]) -> float | None:
    """The share of named attributes the classifier reads back from ``paths[i]`` drawn for ``prompts[i]``;
    None when no prompt names anything it reads."""
    from PIL import Image

    from studio.toyworld.classify import classify

    hits = total = 0
    for path, prompt in zip(paths, prompts, strict=True):
        wanted = prompt_targets(prompt)
        if not wanted:
            continue
        with Image.open(path) as image:
            reading = classify(image.convert("RGB"))
        for key, value in wanted.items():
            total += 1
            hits += getattr(reading, key) == value
    return round(hits / total, 4) if total else None


def palette_scores(
    paths: Iterable[Path], palette: Sequence[str], threshold: float | None = None
) -> list[float]:
    """Each image's palette score against ``palette``."""
    from PIL import Image

    from studio.palette import palette_score

    scores = []
    for path in paths:
        with Image.open(path) as image:
            scores.append(palette_score(image.convert("RGB"), palette, threshold).score)
    return scores


def _mean(values: Sequence[float]) -> float:
    return round(sum(values) / len(values), 4) if values else 0.0


@dataclass
class Scorer:
    """Scores a job's checkpoints; the no-LoRA scores are computed once (the images are drawn once)."""

    palette: tuple[str, ...]
    base_model: str
    prompts: tuple[str, ...]  # the sample prompts with the trigger, in drawing order
    seeds: tuple[int, ...]
    threshold: float | None = None
    _base: dict[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def for_job(cls, job_config: Mapping[str, Any], prompts: Sequence[str], seeds: Sequence[int]) -> Scorer:
        """The scorer of a job: ``job_config["quality"]`` holds the brand palette (set when it was queued)."""
        wanted = dict(job_config.get("quality") or {})
        train = dict(job_config.get("train") or {})
        return cls(
            palette=tuple(wanted.get("palette") or ()),
            base_model=str(train.get("base_model", "")),
            prompts=tuple(prompts),
            seeds=tuple(int(s) for s in seeds),
            threshold=wanted.get("threshold"),
        )

    def _per_image(self, count: int) -> list[str]:
        """The prompt of each image (images go seed by seed, prompt by prompt)."""
        return [self.prompts[i % len(self.prompts)] for i in range(count)]

    def _score_set(self, paths: Sequence[Path]) -> tuple[float, float | None]:
        palette = _mean(palette_scores(paths, self.palette, self.threshold))
        adhere = adherence(paths, self._per_image(len(paths))) if has_classifier(self.base_model) else None
        return palette, adhere

    def score(self, images: Mapping[str, Sequence[Path]]) -> dict[str, Any]:
        """The checkpoint's scores (JSON-ready) from its image sets (:data:`IMAGE_SETS`)."""
        if self._base is None:
            base_palette, base_adherence = self._score_set(images["base"])
            plain = _mean(palette_scores(images["base_plain"], self.palette, self.threshold))
            self._base = {"palette": base_palette, "adherence": base_adherence, "plain": plain}
        lora_palette, lora_adherence = self._score_set(images["lora"])
        lora_plain = _mean(palette_scores(images["lora_plain"], self.palette, self.threshold))
        base = self._base
        return {
            "palette": {"base": base["palette"], "lora": lora_palette},
            "adherence": (
                None
                if base["adherence"] is None or lora_adherence is None
                else {"base": base["adherence"], "lora": lora_adherence}
            ),
            "trigger": {
                "with": lora_palette,
                "without": lora_plain,
                "effect": round(lora_palette - lora_plain, 4),
                "base_without": base["plain"],
            },
            "brand_palette": list(self.palette),
            "prompts": list(self.prompts),
            "seeds": list(self.seeds),
        }


def palette_drop(quality: Mapping[str, Any] | None) -> tuple[float, float] | None:
    """(without LoRA, with LoRA) palette scores when the LoRA lowers the score; else (or unscored) None."""
    if not quality or not quality.get("palette"):
        return None
    base, lora = float(quality["palette"]["base"]), float(quality["palette"]["lora"])
    return (base, lora) if base - lora >= PALETTE_TOLERANCE else None


def keeps_adherence(quality: Mapping[str, Any]) -> bool:
    """Whether the LoRA keeps prompt adherence (always, where it is n/a)."""
    adhere = quality.get("adherence")
    return adhere is None or float(adhere["lora"]) >= float(adhere["base"])


def best_step(checkpoints: Iterable[tuple[int, Mapping[str, Any] | None]]) -> int | None:
    """The best checkpoint's step: the highest palette score with the LoRA among those that keep adherence;
    the earliest on a tie. None when no scored checkpoint keeps adherence."""
    eligible = [
        (float(q["palette"]["lora"]), -step, step)
        for step, q in checkpoints
        if q and q.get("palette") and keeps_adherence(q)
    ]
    return max(eligible)[2] if eligible else None
