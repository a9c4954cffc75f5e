"""A studio data folder for the security suite, filled through the services (the same calls the app makes):
brand ``acme`` on a tiny SD model (a LoRA, a layout template, a dataset with one image) and one user per case.

| user  | roles    | member of acme |
| ----- | -------- | -------------- |
| admin | admin    | (admins see all) |
| mia   | marketer | yes |
| olga  | marketer | no  |
| rex   | reviewer | yes |
| rita  | reviewer | no  |
| zed   | marketer | no  (the target of admin actions) |
| lara  | marketer | no  (the lockout victim) |
"""

from __future__ import annotations

import io
import shutil
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

ADMIN_PASSWORD = "admin-security-pass"
PASSWORDS = {
    "mia": "mia-security-pass",
    "olga": "olga-security-pass",
    "rex": "rex-security-pass",
    "rita": "rita-security-pass",
    "zed": "zed-security-pass",
    "lara": "lara-security-pass",
}
ROLES = {
    "mia": "marketer",
    "olga": "marketer",
    "rex": "reviewer",
    "rita": "reviewer",
    "zed": "marketer",
    "lara": "marketer",
}
MEMBERS = ("mia", "rex")
BRAND = "acme"


@dataclass(frozen=True)
class SecretFiles:
    """Files under the data folder that must never be served."""

    database: Path
    lora: Path
    dataset_image: Path
    dotenv: Path
    template: Path


def png_bytes(size: int = 64, colour: str = "red") -> bytes:
    image = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(image).rectangle((size // 4, size // 4, 3 * size // 4, 3 * size // 4), fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def make_model_dir(root: Path, sd1_dir: Path, controlnet_dir: Path) -> Path:
    """A tiny SD folder with a ``controlnet/`` subfolder (the layout the embedded model has)."""
    folder = root / "model"
    if not folder.exists():
        shutil.copytree(sd1_dir, folder)
        shutil.copytree(controlnet_dir, folder / "controlnet")
    return folder


def populate(home: Path, model_dir: Path, lora_file: Path) -> SecretFiles:
    """Fill ``home`` through the services; returns the files that must stay private."""
    from argon2 import PasswordHasher, profiles

    from studio.config import Settings
    from studio.services.brand_files import BrandSpec, SizePreset
    from studio.services.container import build_services
    from studio.services.views import SYSTEM

    settings = Settings.from_env({"STUDIO_HOME": str(home)})
    services = build_services(settings, password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    try:
        spec = BrandSpec(
            slug=BRAND,
            name="Acme",
            palette=("#ff0000", "#ffffff"),
            palette_threshold=0.4,
            style_template="{prompt}, acme style",
            negative_prompt="blurry",
            size_presets=(SizePreset("square", "feed", 32, 32),),
            default_size="square",
            default_cfg=5.0,
            default_steps=2,
            default_sampler="Euler",
            base_model=str(model_dir),
        )
        services.brands.create_brand(SYSTEM, spec)
        services.brands.upload_lora(SYSTEM, BRAND, lora_file, name="shine", trigger_words=["shinystyle"])
        services.templates.create(SYSTEM, BRAND, "frame", png_bytes(), "canny")
        for name, password in PASSWORDS.items():
            services.users.add_user(SYSTEM, name, [ROLES[name]], password)
        for name in MEMBERS:
            services.brands.grant(SYSTEM, BRAND, name)
        upload = home / "tmp" / "private-1.png"
        upload.parent.mkdir(parents=True, exist_ok=True)
        upload.write_bytes(png_bytes(colour="blue"))
        dataset = services.datasets.create_dataset(SYSTEM, BRAND, "faces")
        added = services.datasets.add_images(SYSTEM, dataset.id, [(upload, "private-1.png")])
        dataset_image = Path(added.dataset.images[0].file_path)
        upload.unlink()
    finally:
        services.close()
    dotenv = home / ".env"
    dotenv.write_text("STUDIO_ADMIN_PASSWORD=do-not-serve-me\n")
    lora = next(settings.loras_dir.rglob("*.safetensors"))
    template = next(p for p in settings.templates_dir.rglob("*") if p.is_file())
    return SecretFiles(
        database=home / "studio.db", lora=lora, dataset_image=dataset_image, dotenv=dotenv, template=template
    )
