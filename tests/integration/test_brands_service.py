"""Brands: sync from files (idempotent, all-or-nothing), membership, LoRA uploads, export round trip."""

from __future__ import annotations

import pickle
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from helpers import files_under, safetensors_bytes, snapshot

from studio.errors import ConflictError, NotFoundError, PermissionDeniedError, ValidationError
from studio.services.brand_files import parse_brand_file
from studio.services.views import SYSTEM, Actor

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse"


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A copy of the demo brands without their trained LoRA files (tests may add files to it)."""
    return Path(shutil.copytree(REPO / "brands", tmp_path / "brands", ignore=shutil.ignore_patterns("loras")))


@pytest.fixture
def synced(services, demo):  # noqa: ANN001, ANN201
    services.brands.sync(SYSTEM, demo)
    services.users.add_user(SYSTEM, "mia", ["marketer"], PASSWORD)
    services.users.add_user(SYSTEM, "ada", ["admin"], PASSWORD)
    return services


def test_sync_creates_the_demo_brands_and_reports_missing_lora_files(services, demo) -> None:  # noqa: ANN001
    report = services.brands.sync(SYSTEM, demo)
    assert [(r.slug, r.status) for r in report.results] == [("ember", "created"), ("lagoon", "created")]
    assert all(any("not found" in w for w in r.warnings) for r in report.results)
    lagoon = services.brands.get_brand(SYSTEM, "lagoon")
    assert lagoon.palette == ("#008080", "#f58719", "#f5dc28")
    assert lagoon.size("story 9:16").height == 112
    assert lagoon.adapters[0].name == "lagoon-style" and lagoon.adapters[0].active_version is None
    template = lagoon.templates[0]
    assert template.source_image_path is not None and template.source_image_path.is_file()
    assert template.control_image_path is None  # canny: the engine makes the control map


def test_second_sync_changes_nothing(services, demo) -> None:  # noqa: ANN001
    services.brands.sync(SYSTEM, demo)
    before, files_before = snapshot(services), files_under(services.settings.home)
    report = services.brands.sync(SYSTEM, demo)
    assert {r.status for r in report.results} == {"unchanged"}
    assert not report.changed
    assert snapshot(services) == before
    assert files_under(services.settings.home) == files_before


def test_editing_a_brand_file_updates_the_brand(services, demo) -> None:  # noqa: ANN001
    services.brands.sync(SYSTEM, demo)
    path = demo / "lagoon" / "brand.toml"
    path.write_text(path.read_text().replace("cfg = 5.0", "cfg = 6.5"))
    report = services.brands.sync(SYSTEM, demo)
    assert [(r.slug, r.status) for r in report.results] == [("ember", "unchanged"), ("lagoon", "updated")]
    assert services.brands.get_brand(SYSTEM, "lagoon").default_cfg == 6.5
    event = services.audit.list_events(SYSTEM, action="brand.sync_updated")[0]
    assert event.details["fields"] == ["default_cfg"]


def test_lora_file_in_the_brand_folder_becomes_the_active_version(services, demo) -> None:  # noqa: ANN001
    lora = demo / "lagoon" / "loras" / "lagoon-style.safetensors"
    lora.parent.mkdir()
    lora.write_bytes(safetensors_bytes(rank=4))
    services.brands.sync(SYSTEM, demo)
    adapter = services.brands.get_brand(SYSTEM, "lagoon").adapters[0]
    first = adapter.active_version
    assert first is not None and first.rank == 4 and first.published
    assert first.file_path.read_bytes() == lora.read_bytes()
    assert first.file_path.is_relative_to(services.settings.loras_dir)
    assert services.brands.sync(SYSTEM, demo).results[1].status == "unchanged"
    lora.write_bytes(safetensors_bytes(rank=8))  # retrained
    assert services.brands.sync(SYSTEM, demo).results[1].status == "updated"
    adapter = services.brands.get_brand(SYSTEM, "lagoon").adapters[0]
    assert len(adapter.versions) == 2 and adapter.active_version.rank == 8


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "0 bytes"),
        (pickle.dumps({"w": 1}, protocol=4), "pickle"),
        (safetensors_bytes()[:-5], "truncated"),
    ],
    ids=["empty", "pickle", "truncated"],
)
def test_a_bad_lora_file_fails_the_whole_sync_and_changes_nothing(services, demo, content, message) -> None:  # noqa: ANN001
    bad = demo / "lagoon" / "loras" / "lagoon-style.safetensors"
    bad.parent.mkdir()
    bad.write_bytes(content)
    before = snapshot(services)
    with pytest.raises(ValidationError, match=message) as err:
        services.brands.sync(SYSTEM, demo)
    assert "lagoon-style.safetensors" in str(err.value)
    assert snapshot(services) == before
    assert files_under(services.settings.loras_dir) == []
    assert files_under(services.settings.templates_dir) == []  # ember (valid) was not half-imported


def test_duplicate_slugs_fail_the_sync_and_change_nothing(services, demo) -> None:  # noqa: ANN001
    copy = demo / "ember-copy"
    shutil.copytree(demo / "ember", copy)
    text = (copy / "brand.toml").read_text()
    (copy / "brand.toml").write_text('slug = "ember"\n' + text)
    with pytest.raises(ValidationError, match="duplicate slug 'ember'") as err:
        services.brands.sync(SYSTEM, demo)
    assert "brand.toml" in str(err.value)
    assert snapshot(services)["brands"] == []


def test_a_malformed_brand_file_fails_the_sync_and_changes_nothing(services, demo) -> None:  # noqa: ANN001
    services.brands.sync(SYSTEM, demo)
    before = snapshot(services)
    path = demo / "lagoon" / "brand.toml"
    path.write_text(path.read_text().replace('"teal"', '"not-a-colour"'))
    with pytest.raises(ValidationError, match=r"lagoon/brand.toml: palette\[0\]"):
        services.brands.sync(SYSTEM, demo)
    assert snapshot(services) == before


def test_members_read_only_their_brands(synced) -> None:  # noqa: ANN001
    mia = Actor.user("mia")
    assert synced.brands.list_brands(mia) == []
    with pytest.raises(NotFoundError):
        synced.brands.get_brand(mia, "lagoon")
    synced.brands.grant(Actor.user("ada"), "lagoon", "mia")
    assert [b.slug for b in synced.brands.list_brands(mia)] == ["lagoon"]
    view = synced.brands.get_brand(mia, "lagoon")
    assert view.slug == "lagoon" and view.members == ()  # member lists are for admins
    assert synced.brands.get_brand(SYSTEM, "lagoon").members == ("mia",)
    assert synced.users.get_user(SYSTEM, "mia").brands == ("lagoon",)
    synced.brands.revoke(SYSTEM, "lagoon", "mia")
    assert synced.brands.list_brands(mia) == []


@pytest.mark.parametrize(
    "call",
    [
        lambda s, a, p: s.brands.sync(a, p),
        lambda s, a, p: s.brands.create_brand(
            a, replace(parse_brand_file(p / "lagoon" / "brand.toml"), slug="new")
        ),
        lambda s, a, p: s.brands.update_brand(
            a, "lagoon", replace(parse_brand_file(p / "lagoon" / "brand.toml"), name="Hijacked")
        ),
        lambda s, a, p: s.brands.grant(a, "lagoon", "mia"),
        lambda s, a, p: s.brands.export_brand(a, "lagoon", p / "out"),
        lambda s, a, p: s.brands.upload_lora(
            a, "lagoon", p / "x.safetensors", name="mine", filename="x.safetensors"
        ),
    ],
    ids=["sync", "create", "update", "grant", "export", "upload-lora"],
)
def test_marketer_cannot_call_admin_brand_methods(synced, demo, call) -> None:  # noqa: ANN001
    (demo / "x.safetensors").write_bytes(safetensors_bytes())
    synced.brands.grant(SYSTEM, "lagoon", "mia")
    before, files_before = snapshot(synced), files_under(synced.settings.home)
    with pytest.raises(PermissionDeniedError):
        call(synced, Actor.user("mia"), demo)
    assert snapshot(synced) == before
    assert files_under(synced.settings.home) == files_before
    assert not (demo / "out").exists()


def test_unknown_actor_is_refused(synced) -> None:  # noqa: ANN001
    with pytest.raises(PermissionDeniedError):
        synced.brands.list_brands(Actor.user("ghost"))


def test_create_and_update_a_brand(synced, demo) -> None:  # noqa: ANN001
    ada = Actor.user("ada")
    spec = replace(
        parse_brand_file(demo / "lagoon" / "brand.toml"), slug="tide", name="Tide", loras=(), templates=()
    )
    created = synced.brands.create_brand(ada, spec)
    assert created.slug == "tide" and created.base_model == "embedded:toyworld"
    with pytest.raises(ConflictError, match="already exists"):
        synced.brands.create_brand(ada, spec)
    updated = synced.brands.update_brand(ada, "tide", replace(spec, palette=("#FFF", "teal")))
    assert updated.palette == ("#ffffff", "#008080")
    before = snapshot(synced)
    with pytest.raises(ValidationError, match="slug"):
        synced.brands.update_brand(ada, "tide", replace(spec, slug="other"))
    with pytest.raises(ValidationError, match="style_template"):
        synced.brands.update_brand(ada, "tide", replace(spec, style_template="no placeholder"))
    with pytest.raises(ValidationError, match=r"palette\[0\]"):
        synced.brands.update_brand(ada, "tide", replace(spec, palette=("blurple",)))
    assert snapshot(synced) == before


def test_upload_lora_adds_an_active_version(synced, make_lora) -> None:  # noqa: ANN001
    upload = make_lora("upload-8f3a", rank=8)  # uploads sit under temporary names
    view = synced.brands.upload_lora(
        SYSTEM,
        "ember",
        upload,
        name="ember-subject",
        kind="subject",
        trigger_words=["emberguy"],
        default_weight=0.7,
        filename="ember subject.safetensors",
    )
    assert view.kind == "subject" and view.trigger_words == ("emberguy",) and view.default_weight == 0.7
    assert view.active_version is not None and view.active_version.rank == 8
    assert view.active_version.file_path.read_bytes() == upload.read_bytes()
    again = synced.brands.upload_lora(
        SYSTEM, "ember", upload, name="ember-subject", kind="subject", filename="again.safetensors"
    )
    assert len(again.versions) == 1  # the same file twice makes no new version
    event = synced.audit.list_events(SYSTEM, action="lora.uploaded")[0]
    assert event.details["sha256"] == view.active_version.sha256


@pytest.mark.parametrize(
    ("content", "filename", "message"),
    [
        (b"", "style.safetensors", "0 bytes"),
        (pickle.dumps({"w": 1}, protocol=4), "style.safetensors", "pickle"),
        (safetensors_bytes(), "style.ckpt", ".safetensors"),
        (b"\x00" * 64, "style.safetensors", "safetensors"),
    ],
    ids=["empty", "pickle", "extension", "garbage"],
)
def test_bad_lora_uploads_are_refused_and_change_nothing(
    synced, tmp_path, content, filename, message
) -> None:  # noqa: ANN001
    upload = tmp_path / "upload-tmp"
    upload.write_bytes(content)
    before, files_before = snapshot(synced), files_under(synced.settings.home)
    with pytest.raises(ValidationError, match=message) as err:
        synced.brands.upload_lora(SYSTEM, "ember", upload, name="bad", filename=filename)
    assert filename in str(err.value)
    assert snapshot(synced) == before
    assert files_under(synced.settings.home) == files_before


def test_upload_lora_validates_its_fields(synced, make_lora) -> None:  # noqa: ANN001
    with pytest.raises(ValidationError, match="kind"):
        synced.brands.upload_lora(SYSTEM, "ember", make_lora(), name="x", kind="mood")
    with pytest.raises(ValidationError, match="name"):
        synced.brands.upload_lora(SYSTEM, "ember", make_lora(), name="Bad Name")
    with pytest.raises(NotFoundError):
        synced.brands.upload_lora(SYSTEM, "nope", make_lora(), name="x")


def test_export_writes_a_folder_that_syncs_back_unchanged(synced, tmp_path, make_lora) -> None:  # noqa: ANN001
    synced.brands.upload_lora(SYSTEM, "lagoon", make_lora(rank=4), name="lagoon-style")
    folder = synced.brands.export_brand(SYSTEM, "lagoon", tmp_path / "export")
    assert folder == tmp_path / "export" / "lagoon"
    exported = parse_brand_file(folder / "brand.toml")
    assert exported.palette == synced.brands.get_brand(SYSTEM, "lagoon").palette
    assert (folder / "loras" / "lagoon-style.safetensors").is_file()
    assert (folder / "templates" / "centered-circle.png").is_file()
    first = synced.brands.sync(SYSTEM, folder).results[0]
    assert first.status == "updated" and first.warnings == ()  # only the source folder changed
    assert synced.audit.list_events(SYSTEM, action="brand.sync_updated")[0].details["fields"] == [
        "source_path"
    ]
    assert synced.brands.sync(SYSTEM, folder).results[0].status == "unchanged"


def test_template_images_are_checked_and_stored(services, demo) -> None:  # noqa: ANN001
    path = demo / "ember" / "brand.toml"
    path.write_text(path.read_text().replace('preprocessor = "canny"', 'preprocessor = "none"'))
    services.brands.sync(SYSTEM, demo)
    template = services.brands.get_brand(SYSTEM, "ember").templates[0]
    assert template.preprocessor == "none"
    assert template.control_image_path == template.source_image_path  # the image is the control map
    assert template.source_image_path.is_relative_to(services.settings.templates_dir)
    before = snapshot(services)
    (demo / "lagoon" / "templates" / "centered-circle.png").write_bytes(b"not an image")
    with pytest.raises(ValidationError, match="centered-circle.png"):
        services.brands.sync(SYSTEM, demo)
    assert snapshot(services) == before
