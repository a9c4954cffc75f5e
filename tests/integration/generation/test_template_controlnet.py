"""A layout template may name its own ControlNet model (``control_templates.controlnet_model``); None = the
base model's own ``controlnet/`` folder. Real SQLite file, real tiny pipeline and ControlNet."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from engine_fixtures import controlnet_dir  # noqa: F401
from helpers import files_under, snapshot
from sqlalchemy import text

from studio.engine.recipe import read_recipe
from studio.errors import ValidationError
from studio.services.generation import GenerateInput
from studio.services.views import SYSTEM, Actor

MIA = Actor.user("mia")


def test_template_with_its_own_controlnet_uses_it(
    studio: Any,
    template_png: bytes,
    model_dir: Path,
    controlnet_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    own = tmp_path / "acme-controlnet"
    shutil.copytree(controlnet_dir, own)
    made = studio.templates.create(
        SYSTEM, "acme", "own-net", template_png, "canny", controlnet_model=f" {own} "
    )
    default = studio.templates.create(SYSTEM, "acme", "model-net", template_png, "canny")
    assert made.controlnet_model == str(own)
    assert default.controlnet_model is None
    with studio.engine.connect() as conn:
        stored = dict(conn.execute(text("select name, controlnet_model from control_templates")).all())
    assert stored["own-net"] == str(own) and stored["model-net"] is None

    request = GenerateInput(brand="acme", prompt="a red circle", seed=3, loras={"shine": 0})
    with_own = studio.generation.generate(MIA, dataclasses.replace(request, templates=("own-net",)))
    with_default = studio.generation.generate(MIA, dataclasses.replace(request, templates=("model-net",)))
    own_recipe = read_recipe(with_own.images[0].path)
    default_recipe = read_recipe(with_default.images[0].path)
    assert [c.controlnet for c in own_recipe.controls] == [str(own)]
    assert [c.controlnet for c in default_recipe.controls] == [str(model_dir / "controlnet")]
    # same weights in both folders: the same pixels, whichever folder they came from
    assert with_own.images[0].pixel_sha256 == with_default.images[0].pixel_sha256
    again = studio.generation.regenerate(MIA, with_own.images[0].id)
    assert [c.controlnet for c in read_recipe(again.images[0].path).controls] == [str(own)]
    assert again.images[0].pixel_sha256 == with_own.images[0].pixel_sha256


def test_unknown_controlnet_is_refused_naming_the_field(
    studio: Any, template_png: bytes, tmp_path: Path
) -> None:
    before = snapshot(studio), files_under(studio.settings.home)
    for bad in (str(tmp_path / "no-such-controlnet"), str(tmp_path)):
        with pytest.raises(ValidationError, match="ControlNet .* cannot be used") as refused:
            studio.templates.create(SYSTEM, "acme", "bad-net", template_png, "canny", controlnet_model=bad)
        assert refused.value.field == "controlnet_model"
    assert (snapshot(studio), files_under(studio.settings.home)) == before  # nothing written


def _brand_folder(root: Path, model_dir: Path, template_png: bytes, controlnet: str) -> Path:
    """``root/acme/brand.toml`` (acme as the fixture makes it) with one template naming ``controlnet``."""
    folder = root / "acme"
    folder.mkdir(parents=True)
    (folder / "t.png").write_bytes(template_png)
    (folder / "brand.toml").write_text(
        f"""name = "Acme"
base_model = {json.dumps(str(model_dir))}
palette = ["#ff0000", "#ffffff"]
style_template = "{{prompt}}, acme style"
[defaults]
cfg = 5.0
steps = 3
sampler = "Euler"
[[sizes]]
name = "square"
channel = "feed"
width = 32
height = 32
[[templates]]
name = "file-net"
image = "t.png"
controlnet_model = {json.dumps(controlnet)}
"""
    )
    return folder


def test_brand_file_template_names_its_controlnet_folder(
    studio: Any,
    template_png: bytes,
    controlnet_dir: Path,  # noqa: F811
    model_dir: Path,
    tmp_path: Path,
) -> None:
    folder = _brand_folder(tmp_path, model_dir, template_png, "nets/canny")  # relative to the brand folder
    shutil.copytree(controlnet_dir, folder / "nets" / "canny")
    report = studio.brands.sync(SYSTEM, folder)
    assert [r.status for r in report.results] == ["updated"]
    own = str((folder / "nets" / "canny").resolve())
    view = studio.brands.get_brand(SYSTEM, "acme")
    assert {t.name: t.controlnet_model for t in view.templates} == {"frame": None, "file-net": own}
    assert [r.status for r in studio.brands.sync(SYSTEM, folder).results] == ["unchanged"]

    made = studio.generation.generate(
        MIA, GenerateInput(brand="acme", prompt="a red circle", seed=3, templates=("file-net",))
    )
    assert [c.controlnet for c in read_recipe(made.images[0].path).controls] == [own]

    exported = studio.brands.export_brand(SYSTEM, "acme", tmp_path / "out")
    assert f"controlnet_model = {json.dumps(own)}" in (exported / "brand.toml").read_text()


@pytest.mark.parametrize("controlnet", ["no-such-net", ".", "/no/such/controlnet"])
def test_brand_file_with_an_unknown_controlnet_changes_nothing(
    studio: Any, template_png: bytes, model_dir: Path, tmp_path: Path, controlnet: str
) -> None:
    folder = _brand_folder(tmp_path, model_dir, template_png, controlnet)
    before = snapshot(studio), files_under(studio.settings.home)
    with pytest.raises(ValidationError, match="ControlNet .* cannot be used") as refused:
        studio.brands.sync(SYSTEM, folder)
    assert refused.value.field == f"{folder / 'brand.toml'}: templates[0].controlnet_model"
    assert (snapshot(studio), files_under(studio.settings.home)) == before  # nothing written
