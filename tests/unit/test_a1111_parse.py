"""Reading A1111's ``parameters`` text back (studio.engine.a1111_parse): A1111's parser rules, the LoRA tags,
and the sampler + schedule names mapped to the studio's (the reverse of studio.engine.a1111)."""

from __future__ import annotations

import pytest

from studio.engine.a1111 import SCHEDULES, parameters_text
from studio.engine.a1111_parse import lora_tags, parse_parameters, studio_sampler
from studio.engine.recipe import LoraEntry, Recipe


def test_the_studio_writer_reads_back_field_for_field() -> None:
    recipe = Recipe(
        base_model="org/model", prompt="a cat, on a mat", negative_prompt="blurry\nugly", sampler="DPM++ 2M",
        steps=25, guidance_scale=6.5, seed=42, width=64, height=48, versions={"studio": "1.0"},
        loras=(LoraEntry("ember-style", "0" * 64, 0.8, a1111_hash="ab" * 32),),
    )  # fmt: skip
    info = parse_parameters(parameters_text(recipe))
    prompt, loras, others = lora_tags(info.prompt)
    assert (prompt, loras, others) == ("a cat, on a mat", [("ember-style", "0.8")], [])
    assert info.negative_prompt == "blurry\nugly"
    fields = info.fields
    assert (fields["Steps"], fields["CFG scale"], fields["Seed"]) == ("25", "6.5", "42")
    assert (fields["Size-1"], fields["Size-2"], fields["Model"], fields["RNG"]) == (
        "64",
        "48",
        "org/model",
        "CPU",
    )
    assert fields["Lora hashes"] == "ember-style: " + "ab" * 6  # quoted (it holds ':'), unquoted here
    assert studio_sampler(fields["Sampler"], fields["Schedule type"]) == "DPM++ 2M"


def test_a_last_line_with_fewer_than_three_fields_is_prompt() -> None:
    info = parse_parameters("a dog\nstyle: bold, mood: calm")
    assert info.prompt == "a dog\nstyle: bold, mood: calm" and info.fields == {}


@pytest.mark.parametrize(
    ("sampler", "schedule", "studio"),
    [
        ("DPM++ 2M", "Karras", "DPM++ 2M Karras"),
        ("DPM++ 2M", None, "DPM++ 2M Karras"),  # A1111 1.9+ reads a plain DPM++ 2M as Karras
        ("DPM++ 2M", "Automatic", "DPM++ 2M Karras"),
        ("DPM++ 2M Karras", None, "DPM++ 2M Karras"),  # A1111 before 1.9
        ("Euler", "Simple", "Euler"),  # the flow-matching Euler the studio writes for SD3/FLUX
        ("Euler a", "Automatic", "Euler a"),
        ("Euler", "Karras", None),
        ("DPM++ SDE", "Karras", None),
        (None, None, None),
    ],
)
def test_samplers_map_back(sampler: str | None, schedule: str | None, studio: str | None) -> None:
    assert studio_sampler(sampler, schedule) == studio


def test_every_studio_sampler_survives_its_own_infotext() -> None:
    for name, (sampler, schedule) in SCHEDULES.items():
        assert studio_sampler(sampler, schedule) == name


def test_lora_tags_without_weight_and_other_networks() -> None:
    text, loras, others = lora_tags("<lora:a> a cat <hypernet:h:1> <LyCo:b:0.5:0.2>")
    assert (text, loras, others) == ("a cat", [("a", "1"), ("b", "0.5")], ["<hypernet:h:1>"])
