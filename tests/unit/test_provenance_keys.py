"""Content Credentials without a database: this install's keys (files, modes, the certificate profile C2PA
validators require), an organisation's keys through settings, and signing / verifying PNG bytes with the
C2PA SDK's own Builder and Reader (created, edited; one pixel changed; the manifest removed)."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import c2pa
import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from studio.config import Settings, SettingsError
from studio.engine.recipe import Recipe
from studio.provenance import manifest as mf
from studio.provenance.keys import (
    CredentialsError,
    credentials_dir,
    ensure_credentials,
    init_credentials,
    load_credentials,
    make_chain,
)
from studio.provenance.sign import (
    forget_credentials,
    png_chunks,
    png_from_chunks,
    sdk_context,
    sign_edited,
    sign_generated,
)
from studio.provenance.verify import pixel_sha256, verify_png


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    forget_credentials()
    return Settings.from_env({"STUDIO_HOME": str(tmp_path / "home")})


def _png(colour: str = "red", size: int = 16) -> bytes:
    info = PngInfo()
    info.add_text("parameters", "a red circle\nSteps: 3, Seed: 7")
    info.add_text("studio_recipe", '{"seed": 7}')
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def _recipe_data(png: bytes, include_prompt: bool = False) -> dict:
    recipe = Recipe(
        base_model="embedded:toyworld",
        prompt="SECRET launch of the Zephyr",
        negative_prompt="blurry",
        sampler="Euler",
        steps=3,
        guidance_scale=5.0,
        seed=7,
        width=16,
        height=16,
    )
    return mf.recipe_assertion(
        recipe,
        brand="acme",
        templates=[],
        pixel_sha256=pixel_sha256(png) or "",
        include_prompt=include_prompt,
    )


def _with_one_pixel_changed(png: bytes) -> bytes:
    """The same file (text chunks, manifest) with the pixels of an image that differs in one pixel."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.putpixel((0, 0), (0, 0, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    new_idat = [c for c in png_chunks(buffer.getvalue()) if c[0] == b"IDAT"]
    chunks = png_chunks(png)
    first = next(i for i, c in enumerate(chunks) if c[0] == b"IDAT")
    kept = [c for c in chunks if c[0] != b"IDAT"]
    return png_from_chunks(kept[:first] + new_idat + kept[first:])


def test_init_writes_a_chain_and_a_private_key_outside_served_folders(settings: Settings) -> None:
    folder = init_credentials(settings)
    assert folder == settings.home / "credentials" and not folder.is_relative_to(settings.images_dir)
    key = folder / "signer.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    signer, ca = x509.load_pem_x509_certificates((folder / "chain.pem").read_bytes())
    assert ca.subject == signer.issuer != signer.subject
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not signer.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = signer.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.digital_signature and not usage.value.key_cert_sign
    eku = signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert (
        ExtendedKeyUsageOID.EMAIL_PROTECTION in eku and ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE not in eku
    )
    assert signer.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert "studio_recipe" not in key.read_text() and "PRIVATE KEY" in key.read_text()
    with pytest.raises(CredentialsError, match="already holds"):
        init_credentials(settings)
    old_ca = (folder / "ca.pem").read_bytes()
    init_credentials(settings, force=True)
    assert (folder / "ca.pem").read_bytes() != old_ca
    assert [p.read_bytes() for p in (folder / "previous").iterdir()] == [old_ca]  # older images still verify


def test_signed_png_validates_with_the_sdk_reader_and_keeps_its_chunks(settings: Settings) -> None:
    credentials, made = ensure_credentials(settings)
    assert made and ensure_credentials(settings)[1] is False
    original = _png()
    signed = sign_generated(settings, original, _recipe_data(original), title="acme-7.png")
    with (
        sdk_context(credentials.anchors_pem) as context,
        c2pa.Reader("image/png", io.BytesIO(signed), None, context) as reader,
    ):
        store = json.loads(reader.json())
    assert store["validation_state"] == "Trusted"
    success = {item["code"] for item in store["validation_results"]["activeManifest"]["success"]}
    assert "assertion.dataHash.match" in success  # the hard binding
    active = store["manifests"][store["active_manifest"]]
    assert active["claim_generator_info"][0]["name"] == "Brand Studio"
    assertions = {a["label"]: a["data"] for a in active["assertions"]}
    (created,) = assertions["c2pa.actions.v2"]["actions"]
    assert created["action"] == "c2pa.created" and created["softwareAgent"]["name"] == "Brand Studio"
    assert created["digitalSourceType"] == mf.TRAINED_ALGORITHMIC_MEDIA
    assert "SECRET" not in json.dumps(store) and assertions[mf.RECIPE_LABEL]["prompt_included"] is False
    with Image.open(io.BytesIO(signed)) as image:
        assert image.text["parameters"].startswith("a red circle") and image.text["studio_recipe"]
        assert "trainedAlgorithmicMedia" in image.info["XML:com.adobe.xmp"]  # readable without C2PA
        assert pixel_sha256(signed) == pixel_sha256(original)
    checked = verify_png(signed, credentials.anchors_pem)
    assert checked.valid and checked.pixels_match is True
    assert verify_png(signed).state == "Valid"  # without this studio's root: valid, not trusted


def test_a_changed_pixel_or_a_removed_manifest_is_caught(settings: Settings) -> None:
    anchors = ensure_credentials(settings)[0].anchors_pem
    original = _png()
    signed = sign_generated(settings, original, _recipe_data(original), title="acme-7.png")
    changed = verify_png(_with_one_pixel_changed(signed), anchors)
    assert changed.has_credentials and not changed.valid and changed.state == "Invalid"
    assert not changed.hard_binding and changed.pixels_match is False
    assert any("dataHash.mismatch" in failure for failure in changed.failures)
    stripped = png_from_chunks([c for c in png_chunks(signed) if c[0] != b"caBX"])
    assert not verify_png(stripped, anchors).has_credentials


def test_a_brand_that_allows_it_gets_the_prompt_in_the_manifest(settings: Settings) -> None:
    anchors = ensure_credentials(settings)[0].anchors_pem
    png = _png()
    signed = sign_generated(settings, png, _recipe_data(png, include_prompt=True), title="acme-7.png")
    (created,) = verify_png(signed, anchors).manifests
    assert created.recipe and created.recipe["prompt"] == "SECRET launch of the Zephyr"


def test_sign_edited_names_the_parent_and_its_manifest(settings: Settings) -> None:
    anchors = ensure_credentials(settings)[0].anchors_pem
    parent_png = _png("red")
    parent = sign_generated(settings, parent_png, _recipe_data(parent_png), title="acme-7.png")
    child_png = _png("blue")
    edited = sign_edited(
        settings, child_png, parent, _recipe_data(child_png), title="acme-8.png", description="inpaint"
    )
    checked = verify_png(edited, anchors)
    assert checked.valid and checked.pixels_match is True
    child, origin = checked.manifests
    assert child.actions[:1] == ("c2pa.opened",) and "c2pa.edited" in child.actions
    assert child.source_type == mf.COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA
    assert origin.actions == ("c2pa.created",) and child.parents == (origin.label,)


def test_organisation_keys_through_settings_and_clear_errors(settings: Settings, tmp_path: Path) -> None:
    ca, chain, key = make_chain("Acme Corp")
    (tmp_path / "org.pem").write_bytes(chain)
    (tmp_path / "org.key").write_bytes(key)
    (tmp_path / "root.pem").write_bytes(ca)
    env = {"STUDIO_HOME": str(settings.home), "STUDIO_C2PA_CERT": str(tmp_path / "org.pem")}
    with pytest.raises(SettingsError, match="STUDIO_C2PA_CERT and STUDIO_C2PA_KEY"):
        Settings.from_env(env)
    with pytest.raises(SettingsError, match="must not be inside a folder the app serves"):
        Settings.from_env(env | {"STUDIO_C2PA_KEY": str(settings.home / "images" / "k.key")})
    org = Settings.from_env(
        env | {"STUDIO_C2PA_KEY": str(tmp_path / "org.key"), "STUDIO_C2PA_TRUST": str(tmp_path / "root.pem")}
    )
    credentials, made = ensure_credentials(org)
    assert not made and not credentials_dir(org).exists()  # the organisation's keys: none made
    assert credentials.subject == "Acme Corp signer (Acme Corp)"
    png = _png()
    assert (
        verify_png(sign_generated(org, png, _recipe_data(png), title="x.png"), credentials.anchors_pem).state
        == "Trusted"
    )

    (tmp_path / "org.key").write_bytes(b"not a key")
    with pytest.raises(CredentialsError, match="the private key is not an unencrypted PEM key"):
        load_credentials(org)
    (tmp_path / "org.key").unlink()
    with pytest.raises(CredentialsError, match=r"the signing key .*org.key is missing \(STUDIO_C2PA_KEY\)"):
        load_credentials(org)
    (tmp_path / "org.key").write_bytes(make_chain()[2])
    with pytest.raises(CredentialsError, match="does not belong to the signing certificate"):
        load_credentials(org)

    init_credentials(settings)
    (credentials_dir(settings) / "signer.key").unlink()
    with pytest.raises(CredentialsError, match="signer.key is missing"):  # never silently replaced
        ensure_credentials(settings)


def test_processes_starting_at_once_make_the_keys_once(settings: Settings) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from studio.config import Settings;"
        "from studio.provenance.keys import ensure_credentials;"
        "c, made = ensure_credentials(Settings.from_env({'STUDIO_HOME': sys.argv[1]}));"
        "print(int(made), c.chain_pem.hex()[-80:])"
    )
    runs = [
        subprocess.Popen([sys.executable, "-c", code, str(settings.home)], stdout=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    answers = [run.communicate(timeout=60)[0].split() for run in runs]
    assert sorted(int(made) for made, _ in answers) == [0, 0, 0, 1]
    assert len({chain for _, chain in answers}) == 1  # everyone signs with the one chain
    assert not (credentials_dir(settings) / ".making").exists()


def test_the_manifest_names_a_local_model_by_its_folder_name_not_its_server_path() -> None:
    """Published credentials must not show the server's folders; the model's hash identifies it."""
    recipe = Recipe(
        base_model="/srv/models/brand-sdxl-v2", prompt="p", negative_prompt="", sampler="Euler",
        steps=3, guidance_scale=5.0, seed=7, width=16, height=16,
    )
    data = mf.recipe_assertion(recipe, brand="acme", templates=[], pixel_sha256="", include_prompt=False)
    assert data["data"]["base_model"] == "brand-sdxl-v2"
    assert "/srv/models" not in str(data)
