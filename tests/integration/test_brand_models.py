"""Brands follow the studio's model unless pinned (issue 14, item 5), and LoRA versions record the family they
were made for. Real SQLite files and services built by ``build_services``; tiny pipelines of each family saved
as diffusers folders; the studio's model is changed the way a user changes it: new settings, services built
again over the same data folder."""

from __future__ import annotations

import hashlib
import io
import shutil
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from engine_fixtures import (  # noqa: F401 (fixtures)
    _once,
    controlnet_dir,
    fast_cpu,
    save_pipeline,
    sd1_dir,
    sd3_pipeline,
    sdxl_pipeline,
)
from helpers import DEMO_BRANDS, safetensors_bytes
from sqlalchemy import select
from typer.testing import CliRunner

from studio.cli import app
from studio.config import Settings
from studio.db.generation_models import Generation
from studio.db.models import AuditEvent
from studio.errors import PermissionDeniedError, ValidationError
from studio.services.brand_files import BrandSpec, SizePreset
from studio.services.generation import GenerateInput
from studio.services.views import SYSTEM, Actor
from studio.training.queue import JobQueue

PASSWORD = "correct horse"
SD1_LORA_VS_SD3 = "made for sd1, this brand's model is sd3"


@pytest.fixture(scope="module")
def sd1_model(tmp_path_factory: pytest.TempPathFactory, sd1_dir: Path, controlnet_dir: Path) -> Path:  # noqa: F811
    """The tiny SD1 folder with its own ``controlnet/`` (as the embedded model has)."""
    folder = tmp_path_factory.mktemp("brand-sd1") / "model"
    shutil.copytree(sd1_dir, folder)
    shutil.copytree(controlnet_dir, folder / "controlnet")
    return folder


@pytest.fixture(scope="module")
def sdxl_model(tmp_path_factory: pytest.TempPathFactory, fast_cpu: None) -> Path:  # noqa: F811
    return _once("brand-sdxl", tmp_path_factory, lambda d: save_pipeline(sdxl_pipeline(), d / "model"))


@pytest.fixture(scope="module")
def sd3_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _once("brand-sd3", tmp_path_factory, lambda d: save_pipeline(sd3_pipeline(), d / "model"))


class Studio:
    """Services over one data folder, built again whenever the studio's model changes."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.services: Any = None

    def start(self, base_model: str | None = None) -> Any:
        from argon2 import PasswordHasher, profiles

        from studio.services.container import build_services

        self.stop()
        env = {"STUDIO_HOME": str(self.home)}
        if base_model is not None:
            env["STUDIO_BASE_MODEL"] = base_model
        hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
        self.services = build_services(Settings.from_env(env), password_hasher=hasher)
        return self.services

    def stop(self) -> None:
        if self.services is not None:
            self.services.close()
            self.services = None


@pytest.fixture
def studio(tmp_path: Path) -> Iterator[Studio]:
    built = Studio(tmp_path / "home")
    yield built
    built.stop()


def layout_png() -> bytes:
    """A red square on white (a layout template's source), as PNG bytes."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (64, 64), "white")
    ImageDraw.Draw(image).rectangle((16, 16, 48, 48), fill="red")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def tide(size: int = 32) -> BrandSpec:
    """A brand that names no model (the studio default)."""
    return BrandSpec(
        slug="tide",
        name="Tide",
        palette=("#008080",),
        style_template="{prompt}, tide style",
        size_presets=(SizePreset("square", "feed", size, size),),
        default_size="square",
        default_cfg=5.0,
        default_steps=1,
        default_sampler="Euler",
    )


def test_a_brand_follows_the_studio_model_when_it_changes(studio: Studio, sdxl_model: Path) -> None:
    services = studio.start()
    created = services.brands.create_brand(SYSTEM, tide())
    assert created.base_model == "embedded:toyworld"
    services.users.add_user(SYSTEM, "ada", ["admin"], PASSWORD)

    services = studio.start(base_model=str(sdxl_model))  # STUDIO_BASE_MODEL changed; nothing else did
    view = services.brands.get_brand(SYSTEM, "tide")
    assert view.base_model == str(sdxl_model)
    assert view.model_pinned is False
    assert view.model_label == f"{sdxl_model} (default: follows STUDIO_BASE_MODEL)"
    [summary] = services.brands.list_brands(SYSTEM)
    assert (summary.base_model, summary.as_dict()["model_pinned"]) == (str(sdxl_model), False)
    assert services.generation.options(Actor.user("ada"), "tide").model_family == "sdxl"

    result = services.generation.generate(Actor.user("ada"), GenerateInput("tide", "a red circle", seed=3))
    with services.sessions() as session:
        generation = session.get(Generation, result.generation_id)
        assert generation is not None
        assert generation.base_model == generation.recipe["base_model"] == str(sdxl_model)


def test_set_model_pins_and_default_unpins(studio: Studio, sd1_model: Path, sd3_model: Path) -> None:
    services = studio.start(base_model=str(sd3_model))
    services.brands.create_brand(SYSTEM, tide())
    services.users.add_user(SYSTEM, "mia", ["marketer"], PASSWORD)
    services.brands.grant(SYSTEM, "tide", "mia")

    pinned = services.brands.set_model(SYSTEM, "tide", str(sd1_model))
    assert (pinned.base_model, pinned.model_pinned) == (str(sd1_model), True)
    assert services.generation.options(Actor.user("mia"), "tide").model_family == "sd1"
    services = studio.start(base_model="embedded:toyworld")  # a pinned brand does not follow the setting
    assert services.brands.get_brand(SYSTEM, "tide").base_model == str(sd1_model)

    with pytest.raises(ValidationError, match="no-such-model"):
        services.brands.set_model(SYSTEM, "tide", str(studio.home / "no-such-model"))
    with pytest.raises(PermissionDeniedError):
        services.brands.set_model(Actor.user("mia"), "tide", "default")
    unpinned = services.brands.set_model(SYSTEM, "tide", "default")
    assert (unpinned.base_model, unpinned.model_pinned) == ("embedded:toyworld", False)
    with services.sessions() as session:
        events = session.scalars(select(AuditEvent).where(AuditEvent.action == "brand.model_set")).all()
        assert [(e.target, e.details["model"], e.details["family"]) for e in events] == [
            ("tide", str(sd1_model), "sd1"),
            ("tide", None, None),
        ]


def test_set_model_from_the_command_line(
    studio: Studio, sd1_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    studio.start().brands.create_brand(SYSTEM, tide())
    studio.stop()
    for key in ("STUDIO_DATABASE_URL", "STUDIO_BASE_MODEL", "STUDIO_ADMIN_PASSWORD"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("STUDIO_HOME", str(studio.home))
    cli = CliRunner()

    missing = cli.invoke(app, ["brands", "set-model", "tide", "nowhere/at-all/x"])
    assert missing.exit_code == 1 and "model: 'nowhere/at-all/x' cannot be used" in missing.output
    done = cli.invoke(app, ["brands", "set-model", "tide", str(sd1_model)])
    assert done.exit_code == 0, done.output
    assert f"tide: base model {sd1_model} (pinned)" in done.output
    assert f"base model {sd1_model} (pinned)" in cli.invoke(app, ["brands", "show", "tide"]).output
    assert cli.invoke(app, ["brands", "set-model", "tide", "default"]).exit_code == 0
    shown = cli.invoke(app, ["brands", "list"]).output
    assert "model=embedded:toyworld (default: follows STUDIO_BASE_MODEL)" in shown


def test_brand_toml_round_trips_default_as_absent(studio: Studio, sd1_model: Path, tmp_path: Path) -> None:
    services = studio.start()
    demo = shutil.copytree(DEMO_BRANDS, tmp_path / "brands", ignore=shutil.ignore_patterns("loras"))
    services.brands.sync(SYSTEM, demo)
    assert services.brands.get_brand(SYSTEM, "lagoon").model_pinned is False  # brand.toml names no model

    def exported() -> dict[str, Any]:
        folder = services.brands.export_brand(SYSTEM, "lagoon", tmp_path / "out")
        return tomllib.loads((folder / "brand.toml").read_text())

    assert "base_model" not in exported()
    services.brands.set_model(SYSTEM, "lagoon", str(sd1_model))
    assert exported()["base_model"] == str(sd1_model)
    services.brands.set_model(SYSTEM, "lagoon", "default")
    services.brands.sync(SYSTEM, tmp_path / "out")  # the pinned export, synced back, pins it again
    assert services.brands.get_brand(SYSTEM, "lagoon").base_model == str(sd1_model)

    brand_file = demo / "lagoon" / "brand.toml"
    brand_file.write_text('base_model = "default"\n' + brand_file.read_text())
    report = services.brands.sync(SYSTEM, demo / "lagoon")
    assert report.results[0].status == "updated"
    assert services.brands.get_brand(SYSTEM, "lagoon").model_pinned is False
    brand_file.write_text(brand_file.read_text().replace('"default"', '"nowhere/model"', 1))
    warnings = services.brands.sync(SYSTEM, demo / "lagoon").results[0].warnings
    assert any("base_model: 'nowhere/model' cannot be used" in w for w in warnings)


@pytest.fixture
def moved_to_sd3(studio: Studio, sd1_model: Path, sd3_model: Path, controlnet_dir: Path) -> Any:  # noqa: F811
    """Brand tide with an SD1 LoRA and a template with an SD ControlNet, made while the studio ran the tiny
    SD1 model; then STUDIO_BASE_MODEL moves to the tiny SD3 model."""
    services = studio.start(base_model=str(sd1_model))
    services.brands.create_brand(SYSTEM, tide())
    lora = studio.home.parent / "shine.safetensors"
    lora.write_bytes(safetensors_bytes())
    uploaded = services.brands.upload_lora(SYSTEM, "tide", lora, name="shine", trigger_words=["shinystyle"])
    assert uploaded.active_version is not None and uploaded.active_version.family == "sd1"
    services.templates.create(
        SYSTEM, "tide", "frame", layout_png(), "canny", controlnet_model=str(controlnet_dir)
    )
    services.users.add_user(SYSTEM, "mia", ["marketer"], PASSWORD)
    services.brands.grant(SYSTEM, "tide", "mia")
    assert services.generation.options(Actor.user("mia"), "tide").lora_issues == ()
    return studio.start(base_model=str(sd3_model))


def test_generate_tab_disables_a_lora_and_template_made_for_another_family(moved_to_sd3: Any) -> None:
    from studio.ui.generate_tab import form_updates

    mia = Actor.user("mia")
    options = moved_to_sd3.generation.options(mia, "tide")
    assert options.model_family == "sd3"
    assert options.lora_issues == (("shine", SD1_LORA_VS_SD3),)
    [(name, why)] = options.template_issues
    assert name == "frame" and why.endswith("a sd ControlNet does not fit this sd3 base model")

    updates = form_updates(options, None)
    slider = updates[8]  # the first LoRA slider (after cfg … availability; the guidance update is last)
    assert slider["interactive"] is False and slider["value"] == 0.0
    assert slider["info"] == f"Disabled: {SD1_LORA_VS_SD3}"
    assert updates[5]["choices"] == [] and updates[6] == []  # the template is not offered
    assert f"LoRA **shine** is disabled: {SD1_LORA_VS_SD3}" in updates[7]
    assert "Template **frame** is disabled" in updates[7]


def test_generation_refuses_a_lora_or_template_made_for_another_family(moved_to_sd3: Any) -> None:
    mia, generation = Actor.user("mia"), moved_to_sd3.generation
    with pytest.raises(ValidationError, match=f"loras.shine: LoRA shine cannot be used: {SD1_LORA_VS_SD3}"):
        generation.generate(mia, GenerateInput("tide", "a red circle", loras={"shine": 0.8}))
    with pytest.raises(ValidationError, match="templates: template frame cannot be used"):
        generation.generate(mia, GenerateInput("tide", "a red circle", templates=["frame"]))
    preview = generation.preview(mia, "tide", "a red circle")  # not asked for by name: left out
    assert preview.loras == () and "shinystyle" not in preview.prompt


def test_doctor_lists_brands_whose_loras_do_not_fit(
    moved_to_sd3: Any, studio: Studio, sd1_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report = moved_to_sd3.doctor.check(SYSTEM)
    assert report.lora_misfits == (("tide", "shine", SD1_LORA_VS_SD3),) and not report.ok
    assert f"LoRA does not fit its brand: tide / shine: {SD1_LORA_VS_SD3}" in report.lines()
    sd3 = str(moved_to_sd3.settings.base_model)
    studio.stop()
    monkeypatch.setenv("STUDIO_HOME", str(studio.home))
    monkeypatch.setenv("STUDIO_BASE_MODEL", sd3)
    monkeypatch.delenv("STUDIO_DATABASE_URL", raising=False)
    run = CliRunner().invoke(app, ["doctor"])
    assert run.exit_code == 1 and SD1_LORA_VS_SD3 in run.output
    services = studio.start(base_model=sd3)
    services.brands.set_model(SYSTEM, "tide", str(sd1_model))  # pinned to the model its LoRA was made for
    assert services.doctor.check(SYSTEM).ok


def test_publish_records_the_family_of_the_model_the_job_trained(studio: Studio, tmp_path: Path) -> None:
    from PIL import Image

    services = studio.start()
    services.brands.sync(SYSTEM, DEMO_BRANDS)
    dataset = services.datasets.create_dataset(SYSTEM, "lagoon", "teal")
    picture = tmp_path / "teal.png"
    Image.new("RGB", (32, 32), (0, 128, 128)).save(picture)
    services.datasets.add_images(SYSTEM, dataset.id, [picture])
    job = services.training.queue_training(
        SYSTEM, "lagoon", "lagoon-new", dataset.id, preset="quick", steps=2, trigger="lagoonnew"
    )
    assert job.config["base_model"] == "embedded:toyworld"
    checkpoint = tmp_path / "step-2.safetensors"
    checkpoint.write_bytes(safetensors_bytes(seed=5))
    queue = JobQueue(services.sessions)
    assert queue.claim("w1") is not None
    sha = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert queue.add_checkpoint(
        job.id,
        "w1",
        step=2,
        file_path=str(checkpoint),
        sha256=sha,
        state_path=None,
        sample_paths=[],
        loss=0.1,
    )
    assert queue.finish(job.id, "w1", "succeeded", "done")
    services.training.publish(SYSTEM, job.id)
    adapter = next(a for a in services.brands.get_brand(SYSTEM, "lagoon").adapters if a.name == "lagoon-new")
    assert adapter.active_version is not None
    assert (adapter.active_version.base_model, adapter.active_version.family) == ("embedded:toyworld", "sd1")


def test_demo_loras_synced_on_another_family_show_as_not_fitting(
    studio: Studio, sdxl_model: Path, tmp_path: Path
) -> None:
    """brand.toml's ``base_model`` of a LoRA names the model its file was made for: the demo brands' LoRAs
    (the embedded model, an SD1-family UNet), synced while the studio runs an SDXL folder, are recorded as
    sd1 LoRAs, shown disabled with the reason, and left out of a generation that does not name them."""
    services = studio.start(base_model=str(sdxl_model))
    services.brands.sync(SYSTEM, DEMO_BRANDS)
    lagoon = services.brands.get_brand(SYSTEM, "lagoon")
    adapter = next(a for a in lagoon.adapters if a.name == "lagoon-style")
    assert adapter.active_version is not None
    assert (adapter.active_version.base_model, adapter.active_version.family) == ("embedded:toyworld", "sd1")
    services.users.add_user(SYSTEM, "mia", ["marketer"], PASSWORD)
    services.brands.grant(SYSTEM, "lagoon", "mia")
    options = services.generation.options(Actor.user("mia"), "lagoon")
    assert options.lora_issues == (("lagoon-style", "made for sd1, this brand's model is sdxl"),)
    preview = services.generation.preview(Actor.user("mia"), "lagoon", "a red circle")
    assert preview.loras == ()  # not asked for by name: left out
    assert services.doctor.check(SYSTEM).lora_misfits == (
        ("ember", "ember-style", "made for sd1, this brand's model is sdxl"),
        ("lagoon", "lagoon-style", "made for sd1, this brand's model is sdxl"),
    )
    out = services.brands.export_brand(SYSTEM, "lagoon", tmp_path / "out")  # the export keeps the record
    assert tomllib.loads((out / "brand.toml").read_text())["loras"][0]["base_model"] == "embedded:toyworld"


def test_generate_tab_gives_usable_loras_the_sliders_first() -> None:
    """A brand kept four LoRAs made for its old model and gained one for its new model: the new one gets a
    slider (the Generate tab has four), the disabled ones fill the rest."""
    from studio.services.generation import GenerationOptions
    from studio.ui.generate_tab import MAX_LORA_SLIDERS, form_updates

    old = [(f"old-{i}", 0.8, ()) for i in range(MAX_LORA_SLIDERS)]
    options = GenerationOptions(
        brand_slug="tide", brand_name="Tide", default_cfg=5.0, default_steps=2, default_sampler="Euler",
        samplers=("Euler",), sizes=(("square", 32, 32),), default_size="square",
        loras=(*old, ("fresh", 1.0, ("freshsty",))), templates=(), base_model="/models/sdxl",
        model_family="sdxl", lora_issues=tuple((name, "made for sd1") for name, _, _ in old),
    )  # fmt: skip
    updates = form_updates(options, None)
    names, sliders = updates[4], updates[8 : 8 + MAX_LORA_SLIDERS]  # after cfg … availability
    assert names == ["fresh", "old-0", "old-1", "old-2"]
    first = sliders[0]
    assert (first["label"], first["interactive"], first["value"]) == ("LoRA fresh (freshsty)", True, 1.0)
    assert all(s["interactive"] is False and s["value"] == 0.0 for s in sliders[1:])
