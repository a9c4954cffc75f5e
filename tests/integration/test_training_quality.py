"""The LoRA quality gate on real runs (real SQLite, the real worker, real diffusers + peft, no mocks).

On the embedded model: every checkpoint is scored with and without the LoRA on the same prompts and seeds;
the no-LoRA images are exactly the plain base pipeline's pixels and are drawn once per job; the scores are
stored with the checkpoint; a LoRA that makes the brand worse is refused at publish unless confirmed. On a
model without a classifier (a tiny random SD 1.x) adherence is n/a.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from argon2 import PasswordHasher, profiles
from engine_fixtures import fast_cpu, sd1_dir  # noqa: F401
from helpers import DEMO_BRANDS, snapshot
from PIL import Image

from studio.config import Settings
from studio.errors import ConflictError
from studio.services.container import build_services
from studio.services.views import SYSTEM
from studio.toyworld import world
from studio.training import quality
from studio.training.worker import Worker

#: ember's palette is black, red, purple: the base model draws this prompt on palette
PROMPT = "{trigger}, a red circle on a black background"  # the trigger first, as a cut prompt would be
GATE = {"sample_steps": 8, "sample_prompts": [PROMPT], "sample_seeds": [5]}


def build(home: Path, **env: str) -> Any:
    settings = Settings.from_env({"STUDIO_HOME": str(home), **env})
    built = build_services(settings, password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    built.brands.sync(SYSTEM, DEMO_BRANDS)
    return built


def off_palette_dataset(services: Any, folder: Path, brand: str) -> int:
    """Yellow squares on white, captioned as the gate's prompt: a LoRA that pulls away from ember."""
    ds = services.datasets.create_dataset(SYSTEM, brand, "off palette")
    files = []
    for i, position in enumerate(("center", "left", "right", "top")):
        path = folder / f"yellow_square_{i}.png"
        world.render(world.Scene("yellow", "square", "white", position)).save(path)
        files.append(path)
    services.datasets.add_images(SYSTEM, ds.id, files)
    services.datasets.caption_all(SYSTEM, ds.id, template="{trigger}, a red circle on a black background",
                                  trigger="worsesty")  # fmt: skip
    return ds.id


def run_worker(services: Any) -> str | None:
    worker = Worker(services.settings)
    try:
        return worker.run_once()
    finally:
        worker.close()


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def test_checkpoints_are_scored_with_and_without_the_lora_and_worse_needs_confirming(
    studio_home: Path,
    tmp_path: Path,
    fast_cpu: None,  # noqa: F811
) -> None:
    services = build(studio_home)
    try:
        training = services.training
        dataset = off_palette_dataset(services, tmp_path, "ember")
        job = training.queue_training(
            SYSTEM, "ember", "ember-worse", dataset, trigger="worsesty", preset="quick", steps=4,
            checkpoint_every=2, learning_rate=0.05, batch_size=4, **GATE,
        )  # fmt: skip
        assert job.config and services.training.get_job(SYSTEM, job.id).status == "queued"
        with services.sessions() as session:  # the job carries what scoring needs: the brand's palette
            from studio.db.training_models import Job

            palette = list(services.brands.get_brand(SYSTEM, "ember").palette)
            assert session.get(Job, job.id).config["quality"]["palette"] == palette
        assert run_worker(services) == "succeeded"

        done = training.get_job(SYSTEM, job.id)
        assert [c.step for c in done.checkpoints] == [2, 4]
        first, last = done.checkpoints
        for ckpt in done.checkpoints:
            q = ckpt.quality
            assert q is not None and set(q) >= {"palette", "adherence", "trigger"}
            assert q["adherence"] is not None  # the embedded model has a classifier
            assert set(ckpt.quality_images) == set(quality.IMAGE_SETS)
            assert all(p.is_file() for paths in ckpt.quality_images.values() for p in paths)
            assert ckpt.quality_images["lora"] == ckpt.sample_paths
            assert q["trigger"]["effect"] == pytest.approx(q["trigger"]["with"] - q["trigger"]["without"])
        # the baseline is drawn once per job and reused by every checkpoint
        assert first.quality_images["base"] == last.quality_images["base"]
        assert first.quality["palette"]["base"] == last.quality["palette"]["base"]

        # the baseline is exactly the base model's pixels (the plain pipeline, same prompt, seed and steps)
        import torch
        from diffusers import StableDiffusionPipeline

        from studio.toyworld import MODEL_DIR

        pipe = StableDiffusionPipeline.from_pretrained(str(MODEL_DIR), safety_checker=None)
        pipe.set_progress_bar_config(disable=True)
        plain_prompt = "a red circle on a black background"
        for key, prompt in (("base", PROMPT.format(trigger="worsesty")), ("base_plain", plain_prompt)):
            plain = pipe(
                prompt, num_inference_steps=8, guidance_scale=5.0, height=64, width=64,
                generator=torch.Generator().manual_seed(5),
            ).images[0]  # fmt: skip
            assert np.array_equal(np.asarray(plain), pixels(first.quality_images[key][0])), key
        base, lora = pixels(first.quality_images["base"][0]), pixels(last.quality_images["lora"][0])
        assert not np.array_equal(base, lora)

        # stored with the checkpoint's row
        with services.sessions() as session:
            from sqlalchemy import select

            from studio.db.training_models import JobCheckpoint

            rows = session.scalars(select(JobCheckpoint).where(JobCheckpoint.job_id == job.id)).all()
            assert all(r.quality["palette"]["lora"] == c.quality["palette"]["lora"]
                       for r, c in zip(rows, done.checkpoints, strict=True))  # fmt: skip

        # this LoRA makes ember worse: publishing it is refused, naming the drop, unless confirmed
        drop = last.palette_drop
        assert drop is not None and drop[1] < drop[0], last.quality
        before = snapshot(services)
        with pytest.raises(ConflictError, match=rf"palette {drop[0]:.2f} → {drop[1]:.2f} with this LoRA"):
            training.publish(SYSTEM, job.id, step=4)
        assert snapshot(services) == before
        result = training.publish(SYSTEM, job.id, step=4, confirm_worse=True)
        assert result.version_number == 1 and result.version_id > 1  # the adapter's first version
        assert done.best_step == quality.best_step((c.step, c.quality) for c in done.checkpoints)
    finally:
        services.close()


def test_rule_for_the_best_checkpoint() -> None:
    def q(palette: float, adherence: tuple[float, float] | None) -> dict[str, Any]:
        adhere = None if adherence is None else {"base": adherence[0], "lora": adherence[1]}
        return {"palette": {"base": 0.3, "lora": palette}, "adherence": adhere}

    # the highest palette that keeps adherence; a higher one that lowers adherence is passed over
    assert quality.best_step([(1, q(0.5, (0.8, 0.8))), (2, q(0.9, (0.8, 0.6))), (3, q(0.7, (0.8, 0.9)))]) == 3
    assert quality.best_step([(1, q(0.5, None)), (2, q(0.5, None))]) == 1  # a tie: the earliest
    assert quality.best_step([(1, q(0.9, (0.8, 0.5))), (2, None)]) is None
    assert quality.palette_drop(q(0.2, None)) == (0.3, 0.2) and quality.palette_drop(q(0.4, None)) is None
    assert quality.prompt_targets("a red circle on a black background, left, acmesty") == {
        "colour": "red", "shape": "circle", "background": "black",
    }  # fmt: skip


def test_adherence_is_na_on_a_model_without_a_classifier(
    studio_home: Path,
    sd1_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    services = build(studio_home, STUDIO_BASE_MODEL=str(sd1_dir))
    try:
        dataset = off_palette_dataset(services, tmp_path, "lagoon")
        fast = {"sample_steps": 1, "sample_prompts": ["{trigger}"], "sample_seeds": [7]}
        job = services.training.queue_training(
            SYSTEM, "lagoon", "tiny", dataset, trigger="tinysty", steps=1, **fast
        )
        assert run_worker(services) == "succeeded"
        (ckpt,) = services.training.get_job(SYSTEM, job.id).checkpoints
        assert ckpt.quality is not None and ckpt.quality["adherence"] is None
        assert 0.0 <= ckpt.quality["palette"]["lora"] <= 1.0
    finally:
        services.close()
