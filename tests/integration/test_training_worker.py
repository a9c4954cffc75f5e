"""The worker runs real training jobs on a tiny random SD pipeline (real peft + diffusers, real SQLite):
publish → new active version, plain ``load_lora_weights`` loads the output, cancel within one step, resume
from a checkpoint matches an uninterrupted run, a crash fails the job with a clear message."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from argon2 import PasswordHasher, profiles
from engine_fixtures import fast_cpu, sd1_dir  # noqa: F401
from helpers import DEMO_BRANDS, snapshot

from studio.config import Settings
from studio.errors import ConflictError
from studio.services.container import build_services
from studio.services.views import SYSTEM
from studio.storage import validate_safetensors
from studio.toyworld import world
from studio.training.queue import JobQueue
from studio.training.trainer import TrainingStopped
from studio.training.worker import JobReporter, Worker

FAST = {"sample_steps": 1, "sample_prompts": ["{trigger}"], "sample_seeds": [7]}


@pytest.fixture
def tservices(studio_home: Path, database_url: str, sd1_dir: Path) -> Any:  # noqa: F811
    env = {"STUDIO_HOME": str(studio_home), "STUDIO_DATABASE_URL": database_url}
    settings = Settings.from_env({**env, "STUDIO_BASE_MODEL": str(sd1_dir)})
    built = build_services(settings, password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    built.brands.sync(SYSTEM, DEMO_BRANDS)
    yield built
    built.close()


@pytest.fixture
def tdataset(tservices: Any, tmp_path: Path) -> int:
    ds = tservices.datasets.create_dataset(SYSTEM, "lagoon", "toy")
    files = []
    for i, colour in enumerate(("orange", "yellow", "orange", "yellow")):
        scene = world.Scene(colour, world.SHAPES[i % 3], "teal", "center")
        path = tmp_path / f"{colour}_{i}.png"
        world.render(scene).save(path)
        files.append(path)
    tservices.datasets.add_images(SYSTEM, ds.id, files)
    tservices.datasets.caption_all(SYSTEM, ds.id, template="{filename}, {trigger}", adapter="lagoon-style")
    return ds.id


def test_train_publish_and_load_with_plain_diffusers(tservices: Any, tdataset: int, sd1_dir: Path) -> None:  # noqa: F811
    training = tservices.training
    job = training.queue_training(
        SYSTEM, "lagoon", "lagoon-style", tdataset, preset="quick", steps=4, checkpoint_every=2, **FAST
    )
    worker = Worker(tservices.settings)
    try:
        assert worker.run_once() == "succeeded"
        assert worker.run_once() is None  # queue empty
    finally:
        worker.close()
    done = training.get_job(SYSTEM, job.id)
    assert done.status == "succeeded" and done.step == 4 and "finished 4 steps" in done.message
    assert [c.step for c in done.checkpoints] == [2, 4]
    assert [s for s, _ in done.loss_history] == [1, 2, 3, 4]
    for ckpt in done.checkpoints:
        info = validate_safetensors(ckpt.file_path)
        assert info.lora_rank == 4
        assert ckpt.sample_paths and all(p.is_file() for p in ckpt.sample_paths)
        assert tservices.settings.images_dir in ckpt.sample_paths[0].parents

    first = training.publish(SYSTEM, job.id, step=2)
    latest = training.publish(SYSTEM, job.id)
    assert latest.step == 4 and latest.version_id != first.version_id
    adapter = next(
        a for a in tservices.brands.get_brand(SYSTEM, "lagoon").adapters if a.name == "lagoon-style"
    )
    assert adapter.active_version is not None and adapter.active_version.id == latest.version_id
    trained = [v for v in adapter.versions if v.id in (first.version_id, latest.version_id)]
    assert {v.source_job_id for v in trained} == {job.id} and all(v.published for v in trained)
    assert len(adapter.versions) >= 2  # older versions (e.g. the shipped demo file) stay
    again = tservices.brands.set_active_version(SYSTEM, "lagoon", "lagoon-style", first.version_id)
    assert again.active_version is not None and again.active_version.id == first.version_id
    assert {c.published_version_id for c in training.get_job(SYSTEM, job.id).checkpoints} == {
        first.version_id,
        latest.version_id,
    }

    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(sd1_dir), safety_checker=None)
    pipe.load_lora_weights(str(adapter.active_version.file_path), adapter_name="trained")
    assert "trained" in pipe.get_list_adapters()["unet"]
    kohya = training.export_kohya(SYSTEM, job.id, tservices.settings.home / "kohya.safetensors")
    assert any(k.startswith("lora_unet_") for k in validate_safetensors(kohya).keys)


def test_cancel_stops_within_one_step(tservices: Any, tdataset: int) -> None:
    training = tservices.training
    job = training.queue_training(SYSTEM, "lagoon", "lagoon-style", tdataset, steps=2000, **FAST)
    queue = JobQueue(tservices.sessions)
    claimed = queue.claim("tester")
    assert claimed is not None
    reporter = JobReporter(queue, tservices.settings, claimed, progress_interval=60)
    reporter.on_step(1, 0.5)  # no cancel asked: carries on
    training.cancel(SYSTEM, job.id)
    with pytest.raises(TrainingStopped, match="cancelled"):
        reporter.on_step(2, 0.5)  # the very next step sees it

    # end to end: a running job stops soon after cancel, long before its 2000 steps
    queue.finish(job.id, "tester", "cancelled", "test")
    job = training.queue_training(SYSTEM, "lagoon", "lagoon-style", tdataset, steps=2000, **FAST)
    worker = Worker(tservices.settings)
    result: list[str | None] = []
    thread = threading.Thread(target=lambda: result.append(worker.run_once()))
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while training.get_job(SYSTEM, job.id).step < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        asked = time.monotonic()
        training.cancel(SYSTEM, job.id)
        thread.join(timeout=60)
        stopped_after = time.monotonic() - asked
    finally:
        worker.close()
    view = training.get_job(SYSTEM, job.id)
    assert result == ["cancelled"] and view.status == "cancelled"
    assert view.step < 2000 and "cancelled at step" in view.message
    assert stopped_after < 10


def test_resume_from_a_checkpoint_matches_an_uninterrupted_run(tservices: Any, tdataset: int) -> None:
    training = tservices.training
    steps = {"steps": 4, "checkpoint_every": 2, **FAST}
    whole = training.queue_training(SYSTEM, "lagoon", "lagoon-style", tdataset, **steps)
    broken = training.queue_training(SYSTEM, "lagoon", "lagoon-style", tdataset, **steps)
    worker = Worker(tservices.settings)
    queue = worker.queue
    try:
        assert worker.run_once() == "succeeded"  # the uninterrupted run
        # the second job: pretend its worker died after the checkpoint at step 2
        claimed = queue.claim("dying")
        assert claimed is not None and claimed.id == broken.id
        from studio.training.worker import run_job

        original_total = claimed.config["train"]["steps"]
        claimed.config["train"]["steps"] = 2  # stop after step 2's checkpoint, like a kill right after it
        run_job(queue, tservices.settings, claimed)
        claimed.config["train"]["steps"] = original_total
        with tservices.sessions.begin() as session:
            from studio.db.training_models import Job

            row = session.get(Job, broken.id)
            row.status, row.message = "interrupted", "worker died"
        resumed = training.resume(SYSTEM, broken.id)
        assert resumed.resume_from == 2 and resumed.status == "queued"
        (first,) = training.get_job(SYSTEM, broken.id).checkpoints
        drawn = {p: p.stat().st_mtime_ns for p in first.quality_images["base"]}
        assert worker.run_once() == "succeeded"
    finally:
        worker.close()
    # the no-LoRA images are drawn once per job: the resumed run found them on disk
    last = training.get_job(SYSTEM, broken.id).checkpoints[-1]
    assert {p: p.stat().st_mtime_ns for p in last.quality_images["base"]} == drawn
    a = training.get_job(SYSTEM, whole.id).checkpoints[-1].file_path
    b = training.get_job(SYSTEM, broken.id).checkpoints[-1].file_path
    from safetensors.torch import load_file

    ta, tb = load_file(str(a)), load_file(str(b))
    assert ta.keys() == tb.keys()
    assert max(float((ta[k] - tb[k]).abs().max()) for k in ta) < 1e-5


def test_a_crash_fails_the_job_with_a_clear_message(tservices: Any, tdataset: int) -> None:
    job = tservices.training.queue_training(SYSTEM, "lagoon", "lagoon-style", tdataset, steps=3, **FAST)
    for image in tservices.datasets.get_dataset(SYSTEM, tdataset).images:
        image.file_path.unlink()  # the files vanish before the worker runs
    worker = Worker(tservices.settings)
    try:
        assert worker.run_once() == "failed"
    finally:
        worker.close()
    view = tservices.training.get_job(SYSTEM, job.id)
    assert view.status == "failed" and "missing" in view.message
    before = snapshot(tservices)
    with pytest.raises(ConflictError, match="failed"):
        tservices.training.publish(SYSTEM, job.id)
    assert snapshot(tservices) == before
    assert torch.is_grad_enabled()


@pytest.mark.gpu
def test_gpu_mixed_precision_and_gradient_checkpointing(tmp_path: Path, sd1_dir: Path) -> None:  # noqa: F811
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    from diffusers import StableDiffusionPipeline

    from studio.training.config import build_config, fit_to_memory
    from studio.training.families import make_trainer
    from studio.training.trainer import TrainItem, device_memory_gib

    items = []
    for i, colour in enumerate(("orange", "yellow", "red", "blue")):
        path = tmp_path / f"{i}.png"
        world.render(world.Scene(colour, "circle", "teal", "center")).save(path)
        items.append(TrainItem(path, f"a {colour} circle, gpustyle"))
    overrides = {"steps": 4, "checkpoint_every": 2, "gradient_checkpointing": True, **FAST}
    config = build_config(str(sd1_dir), preset="quick", trigger="gpustyle", overrides=overrides)
    config = fit_to_memory(config, "cuda", device_memory_gib("cuda"))
    assert config.mixed_precision and config.gradient_checkpointing
    trainer = make_trainer(config, items, out_dir=tmp_path / "run", device="cuda")
    result = trainer.train()
    assert trainer.weight_dtype in (torch.bfloat16, torch.float16)
    assert all(p.dtype == torch.float32 and p.is_cuda for _, p in trainer.params)
    assert result.final is not None and result.loss is not None and result.loss == result.loss  # finite
    pipe = StableDiffusionPipeline.from_pretrained(str(sd1_dir), safety_checker=None)
    pipe.load_lora_weights(str(result.final.lora_path), adapter_name="gpu")
    assert "gpu" in pipe.get_list_adapters()["unet"]


def test_a_lora_with_targets_beyond_attention_is_saved_whole(tmp_path: Path, sd1_dir: Path) -> None:  # noqa: F811
    """Every trained layer, attention or not, comes back when plain diffusers loads the saved file."""
    from diffusers import StableDiffusionPipeline
    from safetensors import safe_open

    from studio.training.config import build_config
    from studio.training.families import make_trainer
    from studio.training.trainer import TrainItem

    items = []
    for i, colour in enumerate(("orange", "yellow")):
        path = tmp_path / f"{i}.png"
        world.render(world.Scene(colour, "square", "teal", "left")).save(path)
        items.append(TrainItem(path, f"a {colour} square, widestyle"))
    targets = ["to_q", "to_k", "to_v", "to_out.0", "conv1", "conv2", "ff.net.2"]
    overrides = {"steps": 2, "checkpoint_every": 2, "target_modules": targets, **FAST}
    config = build_config(str(sd1_dir), preset="quick", trigger="widestyle", overrides=overrides)
    trainer = make_trainer(config, items, out_dir=tmp_path / "run")
    result = trainer.train()
    assert result.final is not None
    trained = {name for name, module in trainer.pipe.unet.named_modules() if hasattr(module, "lora_A")}
    assert any(".attn1.to_q" in n for n in trained) and any(n.endswith("conv1") for n in trained)

    with safe_open(str(result.final.lora_path), "pt") as f:
        keys = list(f.keys())
    namings = {"lora_A/B" if ".lora_A." in k or ".lora_B." in k else "lora.down/up" for k in keys}
    assert len(namings) == 1, f"one key naming per file, found {namings}"

    pipe = StableDiffusionPipeline.from_pretrained(str(sd1_dir), safety_checker=None)
    pipe.load_lora_weights(str(result.final.lora_path), adapter_name="wide")
    loaded = {name for name, module in pipe.unet.named_modules() if hasattr(module, "lora_A")}
    assert loaded == trained, sorted(trained - loaded)[:5]


@pytest.mark.parametrize(
    ("model", "extra"),
    [("embedded:toyworld", {"time_emb_proj"}), ("sd1", set())],
)
def test_default_targets_cover_every_path_the_caption_takes(
    tmp_path: Path, sd1_dir: Path, model: str, extra: set[str]  # noqa: F811
) -> None:
    """With no targets named, a LoRA trains the attention projections, plus the ResNet time projections on a
    UNet that pools the caption into its time embedding (the embedded model), and the file holds them all."""
    from safetensors import safe_open

    from studio.training.config import build_config
    from studio.training.families import make_trainer
    from studio.training.trainer import TrainItem

    path = tmp_path / "0.png"
    world.render(world.Scene("orange", "square", "teal", "left")).save(path)
    base = str(sd1_dir) if model == "sd1" else model
    overrides = {"steps": 1, "checkpoint_every": 1, **FAST}
    config = build_config(base, preset="quick", trigger="widestyle", overrides=overrides)
    assert config.target_modules == ()
    result = make_trainer(config, [TrainItem(path, "a square, widestyle")], out_dir=tmp_path / "run").train()
    assert result.final is not None
    with safe_open(str(result.final.lora_path), "pt") as f:
        keys = list(f.keys())
    layers = {k.split(".lora_")[0].rsplit(".", 1)[-1] for k in keys}
    assert layers == {"to_q", "to_k", "to_v", "0"} | extra, layers  # "0": to_out.0


def test_out_of_gpu_memory_fails_the_job_resumably_and_the_worker_goes_on(
    tservices: Any, tdataset: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CUDA out-of-memory at step 3 (injected: this machine has no GPU) fails the job with a message that
    names the settings to lower; the same worker then resumes it from its step-2 checkpoint to the end."""
    from studio.training.trainer import LoraTrainer

    training = tservices.training
    job = training.queue_training(
        SYSTEM, "lagoon", "lagoon-style", tdataset, steps=4, checkpoint_every=2, **FAST
    )
    original = LoraTrainer.training_step
    calls = {"n": 0}

    def exploding(self: LoraTrainer, step: int) -> float:
        calls["n"] += 1
        if calls["n"] == 3:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, step)

    monkeypatch.setattr(LoraTrainer, "training_step", exploding)
    worker = Worker(tservices.settings)
    try:
        assert worker.run_once() == "failed"
        failed = training.get_job(SYSTEM, job.id)
        assert failed.status == "failed" and failed.step == 2
        assert "out of GPU memory" in failed.message and "batch size" in failed.message
        assert f"resume job {job.id}" in failed.message
        resumed = training.resume(SYSTEM, job.id)
        assert resumed.resume_from == 2
        assert worker.run_once() == "succeeded"  # the worker survived and finishes the job
    finally:
        worker.close()
    done = training.get_job(SYSTEM, job.id)
    assert done.status == "succeeded" and [c.step for c in done.checkpoints] == [2, 4]
