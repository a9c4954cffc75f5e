"""A brand's default guidance (issue 18): ``[defaults.guidance]`` in brand.toml, checked, synced into
``brands.default_guidance`` (migration 0010), shown on the brand and written back by export."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from studio.errors import ValidationError
from studio.services.brand_files import parse_brand_file, render_brand_toml
from studio.services.views import SYSTEM
from studio.toyworld import MODEL_DIR

REPO = Path(__file__).resolve().parents[2]
FDG = '\n[defaults.guidance]\nmethod = "fdg"\nfdg_low_scale = 2.0\noptimized_scale = true\n'


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """The demo brands without their guidance tables (the tests add their own)."""
    skip = shutil.ignore_patterns("loras")
    folder = Path(shutil.copytree(REPO / "brands", tmp_path / "brands", ignore=skip))
    for path in folder.glob("*/brand.toml"):
        text = path.read_text()
        start = text.index("[defaults.guidance]")
        path.write_text(text[:start] + text[text.index("\n\n", start) + 2 :])
    return folder


def test_the_demo_brands_default_to_the_embedded_models_recommended_guidance() -> None:
    from studio.engine.model_info import recommended_guidance
    from studio.toyworld.recipe import RECIPE_GUIDANCE

    assert recommended_guidance(MODEL_DIR) == RECIPE_GUIDANCE
    for slug in ("ember", "lagoon"):
        assert parse_brand_file(REPO / "brands" / slug / "brand.toml").default_guidance == RECIPE_GUIDANCE


def _with_guidance(demo: Path, table: str) -> Path:
    path = demo / "lagoon" / "brand.toml"
    text = path.read_text()
    head, sizes = text.split("\n[[sizes]]", 1)
    path.write_text(head.rstrip("\n") + "\n" + table + "\n[[sizes]]" + sizes)
    return path


def test_the_table_is_read_and_written_back(demo: Path) -> None:
    spec = parse_brand_file(_with_guidance(demo, FDG))
    assert spec.default_guidance == {"method": "fdg", "fdg_low_scale": 2.0, "optimized_scale": True}
    again = demo / "again" / "brand.toml"
    again.parent.mkdir()
    again.write_text(render_brand_toml(spec))
    assert parse_brand_file(again).default_guidance == spec.default_guidance


def test_plain_cfg_is_no_default_guidance(demo: Path) -> None:
    assert parse_brand_file(demo / "lagoon" / "brand.toml").default_guidance is None
    spec = parse_brand_file(_with_guidance(demo, '\n[defaults.guidance]\nmethod = "cfg"\n'))
    assert spec.default_guidance is None
    assert "[defaults.guidance]" not in render_brand_toml(spec)


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ('method = "magic"', "defaults.guidance.method"),
        ('method = "apg"\napg_eta = 2.0', "defaults.guidance.apg_eta"),
        ('method = "fdg"\nstart = 0.5\nstop = 0.5', "defaults.guidance.stop"),
        ('method = "fdg"\nlow = 1.0', "defaults.guidance"),
    ],
)
def test_bad_settings_name_their_field(demo: Path, table: str, field: str) -> None:
    path = _with_guidance(demo, "\n[defaults.guidance]\n" + table + "\n")
    with pytest.raises(ValidationError) as err:
        parse_brand_file(path)
    assert err.value.field == f"{path}: {field}"


def test_sync_stores_it_and_export_writes_it(services, demo: Path, tmp_path: Path) -> None:  # noqa: ANN001
    _with_guidance(demo, FDG)
    services.brands.sync(SYSTEM, demo)
    lagoon = services.brands.get_brand(SYSTEM, "lagoon")
    assert lagoon.default_guidance == {"method": "fdg", "fdg_low_scale": 2.0, "optimized_scale": True}
    assert services.brands.get_brand(SYSTEM, "ember").default_guidance is None
    folder = services.brands.export_brand(SYSTEM, "lagoon", tmp_path / "export")
    assert parse_brand_file(folder / "brand.toml").default_guidance == lagoon.default_guidance
    report = services.brands.sync(SYSTEM, demo)
    assert {r.status for r in report.results} == {"unchanged"}


def test_a_brand_without_a_default_generates_with_the_models_recommendation(services, demo: Path) -> None:  # noqa: ANN001
    """The embedded model's build recommends colour-stable guidance (plain CFG bows its squares and darkens
    its colours): a brand that names none gets it, shown in the Guidance hint; plain CFG stays one choice."""
    from studio.engine.guidance_settings import Guidance
    from studio.engine.recipe import read_recipe
    from studio.services.generation import GenerateInput
    from studio.toyworld.recipe import RECIPE_GUIDANCE
    from studio.ui.generate_form import GUIDANCE_PRESETS, guidance_info

    assert GUIDANCE_PRESETS["Colour-stable (FDG)"] == RECIPE_GUIDANCE
    services.users.add_user(SYSTEM, "admin", ["admin"], "the images' author")
    services.brands.sync(SYSTEM, demo)
    options = services.generation.options(SYSTEM, "lagoon")
    assert options.default_guidance == RECIPE_GUIDANCE and options.guidance_from_model
    assert "(the model's recommendation)" in guidance_info(options)

    def made(**ask: object) -> dict | None:
        request = GenerateInput(brand="lagoon", prompt="a red circle", steps=2, seed=3, loras={}, **ask)
        result = services.generation.generate(SYSTEM, request)
        return read_recipe(result.images[0].path).guidance

    assert Guidance.from_dict(made()) == Guidance.from_dict(RECIPE_GUIDANCE)
    assert made(guidance={"method": "cfg"}) is None  # plain CFG when asked for


def test_only_a_build_that_recommends_guidance_has_one(tmp_path: Path) -> None:
    from studio.engine.model_info import read_model_info
    from studio.engine.models import resolve_model
    from studio.errors import ModelError
    from studio.toyworld.recipe import RECIPE_GUIDANCE

    assert read_model_info(resolve_model("embedded:toyworld")).recommended_guidance == RECIPE_GUIDANCE
    copy = Path(shutil.copytree(MODEL_DIR, tmp_path / "toy", ignore=shutil.ignore_patterns("*.safetensors")))
    (copy / "toyworld.json").unlink()
    assert read_model_info(resolve_model(str(copy))).recommended_guidance is None
    (copy / "toyworld.json").write_text('{"guidance": {"method": "magic"}}')
    with pytest.raises(ModelError, match="toyworld.json"):
        read_model_info(resolve_model(str(copy)))
