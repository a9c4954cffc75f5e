"""A layout template may name its own ControlNet model (``control_templates.controlnet_model``); None = the
base model's own ``controlnet/`` folder. Real SQLite file, real tiny pipeline and ControlNet."""

from __future__ import annotations

import dataclasses
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
