"""Content Credentials (issue 21) on images made, regenerated, approved and exported by the real services,
read back with the C2PA SDK's own Reader: a valid hard binding, the digital source type, the LoRA hashes,
no confidential prompt, two manifests on an approved export, ``studio verify`` (one pixel changed, the
manifest removed), and a missing key stopping the start rather than leaving half an image."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import c2pa
import pytest
from helpers import files_under, snapshot
from PIL import Image
from review_support import MIA, REX, generate_images
from sqlalchemy import text
from typer.testing import CliRunner

from studio.cli import app
from studio.config import Settings
from studio.errors import PermissionDeniedError
from studio.provenance.keys import CredentialsError, credentials_dir
from studio.provenance.manifest import RECIPE_LABEL, TRAINED_ALGORITHMIC_MEDIA
from studio.provenance.sign import forget_credentials, png_chunks, png_from_chunks, sdk_context
from studio.services.container import build_services
from studio.services.views import SYSTEM

SECRET = "the Zephyr launch in March"


@pytest.fixture(scope="module")
def studio(module_studio: Any) -> Any:
    return module_studio


def _store(studio: Any, png: bytes) -> dict[str, Any]:
    """The manifest store as the SDK's Reader gives it, trusting this studio's CA."""
    anchors = (credentials_dir(studio.settings) / "ca.pem").read_bytes()
    with sdk_context(anchors) as context, c2pa.Reader("image/png", io.BytesIO(png), None, context) as reader:
        return json.loads(reader.json())


def _assertions(manifest: dict[str, Any]) -> dict[str, Any]:
    return {a["label"]: a["data"] for a in manifest["assertions"]}


def _valid_with_hard_binding(store: dict[str, Any]) -> bool:
    results = store["validation_results"]["activeManifest"]
    codes = {item["code"] for item in results["success"]}
    return (
        store["validation_state"] == "Trusted"
        and not results["failure"]
        and "assertion.dataHash.match" in codes
    )


def _verify(studio: Any, path: Path) -> Any:
    return CliRunner().invoke(app, ["verify", str(path)], env={"STUDIO_HOME": str(studio.settings.home)})


def test_every_generated_png_validates_and_names_its_loras(studio: Any) -> None:
    ids = generate_images(studio, MIA, SECRET, count=2, loras={"shine": 0.8}, templates=["frame"])
    with studio.engine.connect() as conn:
        lora_sha, version = conn.execute(text("select sha256, id from lora_versions")).one()
    for image_id in ids:
        png = studio.generation.get_image(MIA, image_id).path.read_bytes()
        store = _store(studio, png)
        assert _valid_with_hard_binding(store)
        created = store["manifests"][store["active_manifest"]]
        assert created["claim_generator_info"][0]["name"] == "Brand Studio"
        data = _assertions(created)
        (action,) = data["c2pa.actions.v2"]["actions"]
        assert (action["action"], action["digitalSourceType"]) == ("c2pa.created", TRAINED_ALGORITHMIC_MEDIA)
        recipe = data[RECIPE_LABEL]
        assert [(x["name"], x["version"], x["sha256"]) for x in recipe["loras"]] == [
            ("shine", str(version), lora_sha)
        ]
        lora_file = next(studio.settings.loras_dir.rglob("*.safetensors"))
        assert hashlib.sha256(lora_file.read_bytes()).hexdigest() == lora_sha
        assert [t["name"] for t in recipe["templates"]] == ["frame"] and recipe["base_model"]
        assert SECRET not in json.dumps(store) and "Zephyr" not in json.dumps(
            store
        )  # confidential by default
        with Image.open(io.BytesIO(png)) as image:  # readable without C2PA too
            assert SECRET in image.text["parameters"] and "studio_recipe" in image.text
            assert "trainedAlgorithmicMedia" in image.info["XML:com.adobe.xmp"]
    again = studio.generation.regenerate(MIA, ids[0]).images[0]
    assert again.pixel_sha256 == studio.generation.get_image(MIA, ids[0]).pixel_sha256  # same pixels
    assert _valid_with_hard_binding(_store(studio, again.path.read_bytes()))


def test_a_brand_setting_puts_the_prompt_in(studio: Any) -> None:
    with pytest.raises(PermissionDeniedError):
        studio.credentials.set_include_prompt(MIA, "acme", True)
    studio.credentials.set_include_prompt(SYSTEM, "acme", True)
    try:
        (image_id,) = generate_images(studio, MIA, SECRET)
    finally:
        studio.credentials.set_include_prompt(SYSTEM, "acme", False)
    store = _store(studio, studio.generation.get_image(MIA, image_id).path.read_bytes())
    recipe = _assertions(store["manifests"][store["active_manifest"]])[RECIPE_LABEL]
    assert SECRET in recipe["prompt"] and recipe["prompt_included"] is True
    assert studio.credentials.include_prompt(MIA, "acme") is False


def test_an_approved_export_carries_the_approval_as_a_second_manifest(studio: Any, tmp_path: Path) -> None:
    (image_id,) = generate_images(studio, MIA, "a red circle", loras={"shine": 0.8})
    studio.review.approve(REX, image_id, "on brand")
    out = studio.gallery.export(MIA, tmp_path / "approved.zip", image_ids=[image_id]).path
    with zipfile.ZipFile(out) as archive:
        png = archive.read(f"images/{image_id}.png")
        record = json.loads(archive.read("metadata.json"))[0]
    assert record["file_sha256"] == hashlib.sha256(png).hexdigest()
    store = _store(studio, png)
    assert _valid_with_hard_binding(store) and len(store["manifests"]) == 2
    approved = store["manifests"][store["active_manifest"]]
    approval = _assertions(approved)["com.brandstudio.approval"]
    assert (approval["reviewer"], approval["comment"], approval["image_id"]) == ("rex", "on brand", image_id)
    assert approval["approved_at"] == record["decision_time"]
    (parent,) = approved["ingredients"]
    assert parent["relationship"] == "parentOf"
    created = store["manifests"][parent["active_manifest"]]
    assert _assertions(created)[RECIPE_LABEL]["loras"][0]["name"] == "shine"
    original = studio.generation.get_image(MIA, image_id).path
    with Image.open(io.BytesIO(png)) as exported, Image.open(original) as saved:
        assert exported.tobytes() == saved.tobytes()  # the pixels never change

    exported_file = tmp_path / "exported.png"
    exported_file.write_bytes(png)
    shown = _verify(studio, exported_file)
    assert shown.exit_code == 0, shown.output
    assert (
        "manifests: 2" in shown.output and "approved by rex at" in shown.output and "on brand" in shown.output
    )
    assert "actions: c2pa.created (trainedAlgorithmicMedia)" in shown.output and "shine v" in shown.output
    assert (
        "validation: Trusted, validates" in shown.output
        and "pixels match the recorded sha256: yes" in shown.output
    )

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.putpixel((0, 0), tuple(255 - v for v in image.getpixel((0, 0))))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    chunks = png_chunks(png)
    at = next(i for i, c in enumerate(chunks) if c[0] == b"IDAT")
    others = [c for c in chunks if c[0] != b"IDAT"]
    new_pixels = [c for c in png_chunks(buffer.getvalue()) if c[0] == b"IDAT"]
    (tmp_path / "changed.png").write_bytes(png_from_chunks(others[:at] + new_pixels + others[at:]))
    changed = _verify(studio, tmp_path / "changed.png")
    assert (
        changed.exit_code == 1
        and "DOES NOT VALIDATE" in changed.output
        and "dataHash.mismatch" in changed.output
    )
    assert "pixels match the recorded sha256: NO" in changed.output

    (tmp_path / "stripped.png").write_bytes(png_from_chunks([c for c in chunks if c[0] != b"caBX"]))
    stripped = _verify(studio, tmp_path / "stripped.png")
    assert stripped.exit_code == 1 and "no credentials" in stripped.output


def test_a_missing_or_unreadable_key_is_a_clear_error_never_half_an_image(
    studio: Any, tmp_path: Path
) -> None:
    key = credentials_dir(studio.settings) / "signer.key"
    saved_key = key.read_bytes()
    rows, files = snapshot(studio), files_under(studio.settings.images_dir)
    key.unlink()
    forget_credentials()  # as a new process would: the key is read again
    try:
        with pytest.raises(CredentialsError, match="signer.key is missing"):
            generate_images(studio, MIA)
        assert snapshot(studio) == rows and files_under(studio.settings.images_dir) == files
        with pytest.raises(CredentialsError, match="signer.key is missing"):  # the start stops
            build_services(studio.settings, migrate=False)
        key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
        with pytest.raises(CredentialsError, match="not an unencrypted PEM key"):
            build_services(studio.settings, migrate=False)
        org = {"STUDIO_HOME": str(tmp_path / "org-home"), "STUDIO_C2PA_CERT": str(tmp_path / "org.pem")}
        with pytest.raises(CredentialsError, match=r"org.pem is missing \(STUDIO_C2PA_CERT\)"):
            build_services(Settings.from_env(org | {"STUDIO_C2PA_KEY": str(tmp_path / "org.key")}))
    finally:
        key.write_bytes(saved_key)
        forget_credentials()
    assert generate_images(studio, MIA)


def test_the_gallery_badge_reads_the_image_file(studio: Any) -> None:
    from review_support import OLGA

    from studio.errors import NotFoundError
    from studio.ui.credentials_block import badge_markdown, details_markdown

    (image_id,) = generate_images(studio, MIA)
    found = studio.credentials.check_image(MIA, image_id)
    assert "✅ **Content Credentials** · AI-generated, validates" in badge_markdown(found)
    assert "signed by Brand Studio signer" in badge_markdown(found)
    assert "actions: c2pa.created (trainedAlgorithmicMedia)" in details_markdown(found)
    with pytest.raises(NotFoundError):
        studio.credentials.check_image(OLGA, image_id)  # not a member of the brand: not even a badge


def test_credentials_init_from_the_shell(tmp_path: Path) -> None:
    env = {"STUDIO_HOME": str(tmp_path / "home")}
    made = CliRunner().invoke(app, ["credentials", "init", "--organisation", "Acme Corp"], env=env)
    assert made.exit_code == 0 and "signing as: Acme Corp signer" in made.output
    assert (tmp_path / "home" / "credentials" / "signer.key").stat().st_mode & 0o777 == 0o600
    again = CliRunner().invoke(app, ["credentials", "init"], env=env)
    assert again.exit_code == 1 and "already holds" in again.output and "--force" in again.output
    shown = CliRunner().invoke(app, ["credentials", "show"], env=env)
    assert shown.exit_code == 0 and "valid until: 20" in shown.output


@pytest.mark.slow
@pytest.mark.e2e
def test_the_badge_in_chromium(studio: Any, server: str) -> None:
    import shutil

    from review_support import PASSWORD
    from support.chromium import CHROMIUM, CHROMIUM_ARGS

    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip("Chromium is not installed")
    from playwright.sync_api import sync_playwright

    generate_images(studio, MIA)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.goto(server.rstrip("/") + "/")
            page.get_by_label("username").fill("mia")
            page.get_by_label("password").fill(PASSWORD)
            page.get_by_role("button", name="Login", exact=True).click()
            page.get_by_text("Signed in as mia").wait_for(timeout=30_000)
            page.get_by_role("tab", name="Gallery").click()
            page.get_by_role("button", name="Search").click()
            page.get_by_text("image(s)").first.wait_for(timeout=30_000)
            page.locator("#gallery-grid button.thumbnail-item").first.click()
            page.get_by_text("AI-generated, validates").wait_for(timeout=30_000)
            page.get_by_text("Content Credentials: details").click()
            page.get_by_text("actions: c2pa.created (trainedAlgorithmicMedia)").wait_for(timeout=30_000)
        finally:
            browser.close()


def test_an_edit_saved_by_the_studio_is_signed_as_an_edit_of_its_parent(studio: Any) -> None:
    """The signer the saver uses, given an edited image's recipe (``recipe.edit``, issue 19): a
    ``c2pa.edited`` manifest whose parent ingredient is the gallery image with its own manifest."""
    import dataclasses
    from types import SimpleNamespace

    from studio.engine import recipe as recipes
    from studio.engine.generate import GeneratedImage
    from studio.engine.recipe import read_recipe
    from studio.provenance.manifest import COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    from studio.provenance.sign import png_chunks as chunks_of
    from studio.services.credentials import generated_signer
    from studio.services.generation_save import png_bytes

    if not hasattr(recipes, "EditEntry"):
        pytest.skip("image editing (issue 19) is not in this tree yet")
    (parent_id,) = generate_images(studio, MIA)
    parent = studio.generation.get_image(MIA, parent_id)
    edit = recipes.EditEntry(
        kind="inpaint", strength=1.0, source_sha256=parent.pixel_sha256, parent_image_id=parent_id
    )
    recipe = dataclasses.replace(read_recipe(parent.path), edit=edit)
    image = Image.new("RGB", (32, 32), "blue")
    with studio.engine.connect() as conn:
        brand_id = conn.execute(text("select id from brands where slug = 'acme'")).scalar()
    plan = SimpleNamespace(brand_id=brand_id, brand_slug="acme", templates=())
    sign = generated_signer(studio.sessions, studio.settings, plan)  # type: ignore[arg-type]
    png = sign(GeneratedImage(image, 7, recipe), png_bytes(image))
    store = _store(studio, png)
    assert _valid_with_hard_binding(store) and len(store["manifests"]) == 2
    edited = store["manifests"][store["active_manifest"]]
    actions = _assertions(edited)["c2pa.actions.v2"]["actions"]
    assert [a["action"] for a in actions] == ["c2pa.opened", "c2pa.edited"]
    assert actions[1]["digitalSourceType"] == COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert _assertions(edited)[RECIPE_LABEL]["edit"]["parent_image_id"] == parent_id
    (ingredient,) = edited["ingredients"]
    assert ingredient["relationship"] == "parentOf"
    assert (
        _assertions(store["manifests"][ingredient["active_manifest"]])["c2pa.actions.v2"]["actions"][0][
            "action"
        ]
        == "c2pa.created"
    )
    assert any(kind == b"caBX" for kind, _ in chunks_of(png))
