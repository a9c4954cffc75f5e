"""Restore from a PNG (issue 17 item 3): ``studio regenerate FILE.png``, ``studio generate --from FILE.png``.

Real SQLite, the tiny SD model, brand ``acme`` (LoRA ``shine``, template ``frame``, banned ``competitor``)
from this folder's conftest; the CLI runs in-process (typer's CliRunner) against the same STUDIO_HOME.

* a studio PNG, dragged elsewhere and back, regenerates to the same pixels;
* an A1111-style PNG (``parameters`` written with PIL as A1111 writes it) maps prompt, negative, steps,
  sampler + schedule, CFG, seed, size and ``<lora:…>`` tags, and names what does not map;
* a PNG of a brand the user is not a member of is refused; a banned term in a foreign PNG is refused;
* a ComfyUI workflow PNG without ``parameters`` is named as not readable.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import files_under
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from typer.testing import CliRunner

from studio.cli import app
from studio.engine.recipe import read_recipe
from studio.errors import NotFoundError, ValidationError
from studio.services.generation import GenerateInput
from studio.services.png_restore import PngRestore
from studio.services.views import Actor

MIA, OLGA = Actor.user("mia"), Actor.user("olga")
A1111_TEXT = (
    "a blue square <lora:shine:0.6>, bold <lora:other-style:0.7>\n"
    "Negative prompt: smudge\n"
    "Steps: 2, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 6.5, Seed: 77, Size: 48x32, "
    'Model hash: 0123456789, Model: v1-5-pruned-emaonly, Clip skip: 2, Lora hashes: "shine: 0123456789ab", '
    "Version: v1.10.1"
)


@pytest.fixture
def cli(studio: Any, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """The CLI over the ``studio`` fixture's home and database."""
    monkeypatch.setenv("STUDIO_HOME", str(studio.settings.home))
    monkeypatch.setenv("STUDIO_DATABASE_URL", studio.settings.database_url)
    return CliRunner()


def a1111_png(path: Path, parameters: str | None = None, **chunks: str) -> Path:
    """A PNG as A1111 saves one: RGB pixels and a ``parameters`` text chunk."""
    info = PngInfo()
    if parameters is not None:
        info.add_text("parameters", parameters)
    for key, value in chunks.items():
        info.add_text(key, value)
    Image.new("RGB", (48, 32), "navy").save(path, pnginfo=info)
    return path


def _studio_png(studio: Any, tmp_path: Path) -> tuple[Path, str]:
    """A studio image of mia's (non-default recipe), copied out as if downloaded: (copy, pixel sha256)."""
    ask = GenerateInput(
        brand="acme",
        prompt="a red circle",
        negative_prompt="smudge",
        cfg=4.5,
        steps=2,
        seed=11,
        sampler="DPM++ 2M",
        size="wide",
        loras={"shine": 0.5},
    )
    image = studio.generation.generate(MIA, ask).images[0]
    copy = tmp_path / "dragged.png"
    shutil.copyfile(image.path, copy)
    return copy, image.pixel_sha256


def test_cli_regenerate_of_a_studio_png_gives_the_same_pixels(
    studio: Any, cli: CliRunner, tmp_path: Path
) -> None:
    png, pixels = _studio_png(studio, tmp_path)

    again = cli.invoke(app, ["regenerate", str(png), "--user", "mia", "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["images"][0]["pixel_sha256"] == pixels

    settings = PngRestore.of(studio).read(MIA, png)  # the form's values: the image's own recipe
    assert settings.source == "studio" and settings.image_id is not None and settings.unmapped == ()
    ask = settings.request
    assert (ask.prompt, ask.negative_prompt, ask.cfg, ask.steps, ask.seed) == (
        "a red circle",
        "smudge",
        4.5,
        2,
        11,
    )
    assert (ask.sampler, ask.width, ask.height, dict(ask.loras)) == ("DPM++ 2M", 48, 32, {"shine": 0.5})

    made = cli.invoke(app, ["generate", "--from", str(png), "--user", "mia", "--json"])
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["images"][0]["pixel_sha256"] == pixels
    other = cli.invoke(app, ["generate", "--from", str(png), "--seed", "12", "--user", "mia", "--json"])
    assert other.exit_code == 0, other.output
    assert json.loads(other.stdout)["images"][0]["seed"] == 12


def test_generate_from_an_a1111_png_maps_its_settings_and_names_the_rest(
    studio: Any, cli: CliRunner, tmp_path: Path
) -> None:
    png = a1111_png(tmp_path / "00042-77.png", A1111_TEXT)

    settings = PngRestore.of(studio).read(MIA, png, brand="acme")
    ask = settings.request
    assert settings.source == "a1111" and settings.image_id is None
    assert (ask.prompt, ask.negative_prompt) == ("a blue square, bold", "smudge")
    assert (ask.steps, ask.sampler, ask.cfg, ask.seed, ask.size) == (2, "DPM++ 2M Karras", 6.5, 77, "wide")
    assert dict(ask.loras) == {"shine": 0.6}
    notes = "\n".join(settings.unmapped)
    assert "LoRA 'other-style' is not one of brand acme's (it has: shine)" in notes
    assert "model v1-5-pruned-emaonly (hash 0123456789) is not the brand's" in notes
    assert "fields not used: Clip skip" in notes
    assert "the studio draws it on the CPU" in notes  # no RNG field: A1111 drew GPU noise

    made = cli.invoke(
        app, ["generate", "--from", str(png), "--brand", "acme", "--steps", "1", "--user", "mia", "--json"]
    )
    assert made.exit_code == 0, made.output
    assert "not mapped: LoRA 'other-style'" in made.stderr
    recipe = read_recipe(json.loads(made.stdout)["images"][0]["path"])
    assert recipe.prompt_typed == "a blue square, bold" and "smudge" in recipe.negative_prompt
    assert (recipe.steps, recipe.sampler, recipe.guidance_scale, recipe.seed) == (
        1,
        "DPM++ 2M Karras",
        6.5,
        77,
    )
    assert (recipe.width, recipe.height) == (48, 32)
    assert [(entry.name, entry.weight) for entry in recipe.loras] == [("shine", 0.6)]

    odd = a1111_png(
        tmp_path / "odd.png",
        "a cat\nSteps: 2, Sampler: DPM++ SDE, Schedule type: Karras, CFG scale: 5, Seed: 1, Size: 40x40, "
        "RNG: CPU",
    )
    named = PngRestore.of(studio).read(MIA, odd, brand="acme")
    assert named.request.sampler is None and named.request.size is None
    assert any("sampler 'DPM++ SDE (Karras)' has no match here; Euler is used" in n for n in named.unmapped)
    assert any("size 40x40 is not one of the brand's sizes; square is used" in n for n in named.unmapped)
    assert not any("noise" in n for n in named.unmapped)  # RNG: CPU is the studio's


def test_a_png_of_a_brand_the_user_is_not_a_member_of_is_refused(
    studio: Any, cli: CliRunner, tmp_path: Path
) -> None:
    png, _ = _studio_png(studio, tmp_path)
    before = files_under(studio.settings.images_dir)

    with pytest.raises(NotFoundError, match="not one you may see"):
        PngRestore.of(studio).regenerate(OLGA, png)
    refused = cli.invoke(app, ["regenerate", str(png), "--user", "olga"])
    assert refused.exit_code == 1 and "not one you may see" in refused.stderr
    foreign = a1111_png(tmp_path / "a1111.png", A1111_TEXT)
    refused = cli.invoke(app, ["generate", "--from", str(foreign), "--brand", "acme", "--user", "olga"])
    assert refused.exit_code == 1 and "acme" in refused.stderr
    assert files_under(studio.settings.images_dir) == before


def test_a_banned_term_in_a_foreign_png_is_refused(studio: Any, cli: CliRunner, tmp_path: Path) -> None:
    before = files_under(studio.settings.images_dir)
    png = a1111_png(tmp_path / "banned.png", A1111_TEXT.replace("a blue square", "a competitor logo"))

    with pytest.raises(ValidationError, match="prompt: contains 'competitor'"):
        PngRestore.of(studio).generate(MIA, png, brand="acme")
    refused = cli.invoke(app, ["regenerate", str(png), "--brand", "acme", "--user", "mia"])
    assert refused.exit_code == 1 and "contains 'competitor'" in refused.stderr
    assert files_under(studio.settings.images_dir) == before


def test_pngs_without_readable_settings_are_named(studio: Any, cli: CliRunner, tmp_path: Path) -> None:
    restore = PngRestore.of(studio)
    workflow = a1111_png(tmp_path / "comfy.png", prompt='{"3": {"class_type": "KSampler"}}', workflow="{}")
    with pytest.raises(ValidationError, match="ComfyUI workflow PNG without A1111 'parameters'"):
        restore.read(MIA, workflow, brand="acme")
    with pytest.raises(ValidationError, match="carries no generation settings"):
        restore.read(MIA, a1111_png(tmp_path / "plain.png"), brand="acme")
    no_brand = cli.invoke(
        app, ["regenerate", str(a1111_png(tmp_path / "x.png", A1111_TEXT)), "--user", "mia"]
    )
    assert no_brand.exit_code == 1 and "is not an image of this studio: name the brand" in no_brand.stderr
    text = tmp_path / "notes.png"
    text.write_text("not a png")
    assert "not a readable PNG image" in cli.invoke(app, ["regenerate", str(text)]).stderr


def test_a_foreign_png_keeps_plain_cfg_where_the_brand_defaults_to_another_guidance(
    studio: Any, tmp_path: Path, model_dir: Path
) -> None:
    from studio.services.brand_files import BrandSpec, SizePreset
    from studio.services.views import SYSTEM

    spec = BrandSpec(
        slug="beta", name="Beta", palette=("#ff0000",), style_template="{prompt}",
        size_presets=(SizePreset("wide", "web", 48, 32),), default_size="wide", default_cfg=5.0,
        default_steps=2, default_sampler="Euler", base_model=str(model_dir),
        default_guidance={"method": "fdg", "fdg_low_scale": 2.0, "optimized_scale": True},
    )  # fmt: skip
    studio.brands.create_brand(SYSTEM, spec)
    studio.brands.grant(SYSTEM, "beta", "mia")
    png = a1111_png(tmp_path / "a1111.png", A1111_TEXT)

    settings = PngRestore.of(studio).read(MIA, png, brand="beta")
    assert settings.request.guidance == {"method": "cfg"}  # as A1111 made it, not the brand's FDG
    result, _ = PngRestore.of(studio).generate(MIA, png, {"steps": 1}, brand="beta")
    assert read_recipe(result.images[0].path).guidance is None  # plain CFG
