"""Content Credentials (issue 21) on the LoRA training samples: every checkpoint sample and quality-gate PNG
a real training job writes (tiny random SD pipeline, real worker, real SQLite) validates with the C2PA SDK's
Reader, says ``c2pa.created`` / trainedAlgorithmicMedia and names the job, brand, adapter and the checkpoint
LoRA's sha256; a missing key fails the job before any sample is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles
from engine_fixtures import fast_cpu, sd1_dir  # noqa: F401
from helpers import DEMO_BRANDS
from support.c2pa_reader import active, assertions, manifest_store, valid_with_hard_binding

from studio.config import Settings
from studio.provenance.keys import KEY_FILE
from studio.provenance.manifest import TRAINED_ALGORITHMIC_MEDIA, TRAINING_SAMPLE_LABEL
from studio.provenance.sign import forget_credentials
from studio.services.container import build_services
from studio.services.views import SYSTEM
from studio.toyworld import world
from studio.training.train_job import job_dirs
from studio.training.worker import Worker

FAST = {"sample_steps": 1, "sample_prompts": ["{trigger}"], "sample_seeds": [7]}


@pytest.fixture
def studio(studio_home: Path, database_url: str, sd1_dir: Path, tmp_path: Path) -> Any:  # noqa: F811
    env = {"STUDIO_HOME": str(studio_home), "STUDIO_DATABASE_URL": database_url}
    settings = Settings.from_env({**env, "STUDIO_BASE_MODEL": str(sd1_dir)})
    built = build_services(settings, password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    built.brands.sync(SYSTEM, DEMO_BRANDS)
    dataset = built.datasets.create_dataset(SYSTEM, "lagoon", "toy")
    files = []
    for i, colour in enumerate(("orange", "yellow")):
        path = tmp_path / f"{colour}_{i}.png"
        world.render(world.Scene(colour, world.SHAPES[i], "teal", "center")).save(path)
        files.append(path)
    built.datasets.add_images(SYSTEM, dataset.id, files)
    built.datasets.caption_all(SYSTEM, dataset.id, template="{filename}, {trigger}", adapter="lagoon-style")
    yield built, dataset.id
    built.close()
    forget_credentials()


def _train(studio: tuple[Any, int]) -> tuple[Any, str | None]:
    """Queue a 2-step training (a checkpoint at step 2) and run it on a real worker."""
    services, dataset_id = studio
    job = services.training.queue_training(
        SYSTEM, "lagoon", "lagoon-style", dataset_id, preset="quick", steps=2, checkpoint_every=2,
        **FAST,
    )  # fmt: skip
    worker = Worker(services.settings)
    try:
        outcome = worker.run_once()
    finally:
        worker.close()
    return services.training.get_job(SYSTEM, job.id), outcome


def test_every_training_sample_png_is_signed_and_names_the_job_and_lora(studio: Any) -> None:
    job, outcome = _train(studio)
    assert outcome == "succeeded", job.message
    (checkpoint,) = job.checkpoints
    pngs = sorted(job_dirs(studio[0].settings, job.id)[1].rglob("*.png"))
    # the sample, the same without the trigger, and the two baselines drawn without the LoRA
    names = [f"{p.parent.name}/{p.name}" for p in pngs]
    assert names == [
        f"{folder}/p0-s7{suffix}.png" for folder in ("baseline", "step-000002") for suffix in ("-plain", "")
    ]
    assert set(checkpoint.sample_paths) <= set(pngs)
    home = studio[0].settings.home
    for png in pngs:
        store = manifest_store(png.read_bytes(), home)
        assert valid_with_hard_binding(store), (png, store["validation_results"])
        manifest = active(store)
        assert manifest["claim_generator_info"][0]["name"] == "Brand Studio"
        data = assertions(manifest)
        (action,) = data["c2pa.actions.v2"]["actions"]
        assert (action["action"], action["digitalSourceType"]) == ("c2pa.created", TRAINED_ALGORITHMIC_MEDIA)
        sample = data[TRAINING_SAMPLE_LABEL]
        with_lora = png.parent.name != "baseline"
        named = (sample["training_job"], sample["brand"], sample["adapter"])
        assert named == (job.id, "lagoon", "lagoon-style")
        assert sample["base_model"] and sample["seed"] == 7 and sample["lora"] is with_lora
        assert sample["trigger"] is not png.stem.endswith("-plain")
        assert sample["lora_sha256"] == (checkpoint.sha256 if with_lora else None)
        assert sample["prompt_included"] is False and "prompt" not in sample


def test_a_missing_key_fails_the_job_before_any_sample_is_written(studio: Any) -> None:
    (studio[0].settings.home / "credentials" / KEY_FILE).unlink()
    forget_credentials()
    job, outcome = _train(studio)
    assert outcome == "failed" and "key" in job.message.lower(), job.message
    assert not list(job_dirs(studio[0].settings, job.id)[1].rglob("*.png"))
