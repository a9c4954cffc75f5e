"""brand.toml parsing and validation: every bad input names the file and the field."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from studio.colours import BACKGROUND_COLOURS, FOREGROUND_COLOURS, NAMED_COLOURS
from studio.errors import ValidationError
from studio.services.banned_terms import banned_term_in
from studio.services.brand_files import (
    find_brand_files,
    parse_brand_file,
    render_brand_toml,
    spec_from_mapping,
)

REPO = Path(__file__).resolve().parents[2]

GOOD = """
name = "Acme"
palette = ["#112233", "teal"]
style_template = "{prompt}, acme style"
[defaults]
cfg = 5.0
steps = 20
sampler = "Euler a"
[[sizes]]
name = "square 1:1"
channel = "feed"
width = 64
height = 64
[[loras]]
name = "acme-style"
file = "loras/acme-style.safetensors"
"""


def write(tmp_path: Path, text: str, slug: str = "acme") -> Path:
    path = tmp_path / slug / "brand.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_demo_brands_parse_with_toy_world_palettes() -> None:
    files = find_brand_files(REPO / "brands")
    specs = {parse_brand_file(f).slug: parse_brand_file(f) for f in files}
    assert set(specs) == {"lagoon", "ember"}
    assert specs["lagoon"].palette == (
        NAMED_COLOURS["teal"],
        NAMED_COLOURS["orange"],
        NAMED_COLOURS["yellow"],
    )
    assert specs["ember"].palette == (NAMED_COLOURS["black"], NAMED_COLOURS["red"], NAMED_COLOURS["purple"])
    for spec in specs.values():
        assert "{prompt}" in spec.style_template
        assert {p.name for p in spec.size_presets} >= {"square 1:1", "story 9:16"}
        assert spec.loras and spec.banned_terms


def test_named_colours_match_the_toy_world() -> None:
    world = pytest.importorskip("studio.toyworld.world")
    as_hex = {n: "#" + bytes(rgb).hex() for n, rgb in world.FG_COLOURS.items()}
    assert as_hex == FOREGROUND_COLOURS
    as_hex = {n: "#" + bytes(rgb).hex() for n, rgb in world.BACKGROUNDS.items()}
    assert as_hex == BACKGROUND_COLOURS


def test_sampler_and_preprocessor_names_match_the_engine() -> None:
    from studio.services.brand_files import PREPROCESSORS, SAMPLERS

    samplers = pytest.importorskip("studio.engine.samplers")
    control = pytest.importorskip("studio.engine.control")
    assert samplers.SAMPLERS == SAMPLERS
    assert control.PREPROCESSORS == PREPROCESSORS


def test_good_file_is_normalised(tmp_path: Path) -> None:
    spec = parse_brand_file(write(tmp_path, GOOD))
    assert spec.slug == "acme"  # from the folder
    assert spec.palette == ("#112233", "#008080")
    assert spec.default_size == "square 1:1"
    assert spec.loras[0].kind == "style" and spec.loras[0].default_weight == 1.0


def test_render_then_parse_gives_back_the_same_spec(tmp_path: Path) -> None:
    for path in find_brand_files(REPO / "brands"):
        spec = parse_brand_file(path)
        text = render_brand_toml(spec)
        again = parse_brand_file(write(tmp_path, text, slug=spec.slug))
        assert again == spec
        assert render_brand_toml(again) == text  # deterministic


def test_render_escapes_strings(tmp_path: Path) -> None:
    spec = replace(parse_brand_file(write(tmp_path, GOOD)), description='say "hi"\n\tback\\slash ünï')
    again = parse_brand_file(write(tmp_path, render_brand_toml(spec), slug="acme"))
    assert again.description == spec.description


def test_template_controlnet_model_is_optional_and_round_trips(tmp_path: Path) -> None:
    template = '[[templates]]\nname = "{name}"\nimage = "t.png"\n'
    text = (
        GOOD
        + template.format(name="own")
        + 'controlnet_model = " nets/canny "\n'
        + template.format(name="blank")
        + 'controlnet_model = "  "\n'
        + template.format(name="plain")
    )
    spec = parse_brand_file(write(tmp_path, text))
    assert [t.controlnet_model for t in spec.templates] == ["nets/canny", None, None]
    rendered = render_brand_toml(spec)
    assert rendered.count("controlnet_model") == 1
    assert parse_brand_file(write(tmp_path, rendered, slug="acme")) == spec


BAD_CASES = [
    ("malformed", 'name = "Acme"\npalette = [', "", "malformed TOML"),
    ("unknown key", "colour_scheme = 1\n" + GOOD, "colour_scheme", "unknown key"),
    ("nested key", GOOD.replace("steps = 20", "steps = 20\nseed = 3"), "defaults.seed", "unknown key"),
    ("bad colour", GOOD.replace('"teal"', '"tealish"'), "palette[1]", "not a colour"),
    ("bad hex", GOOD.replace('"#112233"', '"#11223G"'), "palette[0]", "not a colour"),
    ("empty palette", GOOD.replace('["#112233", "teal"]', "[]"), "palette", "non-empty"),
    ("no prompt", GOOD.replace("{prompt}, acme style", "acme style"), "style_template", "{prompt}"),
    ("other placeholder", GOOD.replace("acme style", "{style}"), "style_template", "{style}"),
    ("missing name", GOOD.replace('name = "Acme"', ""), "name", "required"),
    ("bad slug", 'slug = "Not OK"\n' + GOOD, "slug", "lowercase"),
    ("bad sampler", GOOD.replace('"Euler a"', '"Warp 9"'), "defaults.sampler", "unknown sampler"),
    ("bad steps", GOOD.replace("steps = 20", "steps = 0"), "defaults.steps", "between"),
    ("cfg string", GOOD.replace("cfg = 5.0", 'cfg = "high"'), "defaults.cfg", "number"),
    ("size not x8", GOOD.replace("width = 64", "width = 60"), "sizes[0].width", "multiple of 8"),
    ("bad default size", GOOD.replace('sampler = "Euler a"', 'sampler = "Euler a"\nsize = "huge"'),
     "defaults.size", "not one of"),
    ("lora kind", GOOD + 'kind = "mood"\n', "loras[0].kind", "style, subject"),
    ("lora outside", GOOD.replace("loras/acme-style", "../../etc/acme-style"), "loras[0].file", "inside"),
    ("lora ckpt", GOOD.replace("style.safetensors", "style.ckpt"), "loras[0].file", ".safetensors"),
    ("lora weight", GOOD + "default_weight = 9\n", "loras[0].default_weight", "between"),
    ("template guidance", GOOD + '[[templates]]\nname = "t"\nimage = "t.png"\nguidance_start = 0.9\n'
     "guidance_end = 0.5\n", "templates[0].guidance_end", "greater"),
    ("template preprocessor", GOOD + '[[templates]]\nname = "t"\nimage = "t.png"\npreprocessor = "magic"\n',
     "templates[0].preprocessor", "unknown preprocessor"),
    ("template controlnet", GOOD + '[[templates]]\nname = "t"\nimage = "t.png"\ncontrolnet_model = 3\n',
     "templates[0].controlnet_model", "must be a string"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "text", "field", "message"), BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_brand_files_name_the_file_and_field(
    tmp_path: Path, case: str, text: str, field: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValidationError) as err:
        parse_brand_file(path)
    assert str(path) in str(err.value)
    assert f"{path}: {field}" in err.value.field if field else err.value.field == str(path)
    assert message in str(err.value)


def test_form_data_uses_the_same_validation() -> None:
    with pytest.raises(ValidationError, match="brand form: palette\\[0\\]"):
        spec_from_mapping(
            {"slug": "x", "name": "X", "palette": ["nope"], "style_template": "{prompt}"}, source="brand form"
        )


def test_find_brand_files_refuses_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no brand.toml"):
        find_brand_files(tmp_path)


def test_banned_terms_match_whole_words_case_insensitively() -> None:
    assert banned_term_in("A GORE scene", ["gore"]) == "gore"
    assert banned_term_in("gorevalley", ["gore"]) is None
    assert banned_term_in("our competitor's logo", ["competitor"]) == "competitor"
