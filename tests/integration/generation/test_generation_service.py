"""Brand-aware generation with a real SQLite file and a real (tiny, random) diffusers pipeline.

The tiny SD folder gets a ``controlnet/`` subfolder, as the embedded model has, so templates work too.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path
from typing import Any

import pytest
from helpers import files_under, snapshot
from PIL import Image
from sqlalchemy import select, text

from studio.db.generation_models import Generation
from studio.engine.generate import GenerationCancelled
from studio.engine.recipe import read_parameters, read_recipe
from studio.errors import ModelError, NotFoundError, PermissionDeniedError, ValidationError
from studio.services.generation import GenerateInput
from studio.services.views import SYSTEM, Actor

MIA, OUTSIDER, REX = Actor.user("mia"), Actor.user("olga"), Actor.user("rex")


def _state(studio: Any) -> tuple[Any, list[str]]:
    return snapshot(studio), files_under(studio.settings.home)


def test_preview_applies_the_brand(studio: Any) -> None:
    preview = studio.generation.preview(MIA, "acme", "a red circle", "ugly, Blurry")
    assert preview.prompt == "shinystyle, a red circle, acme style"  # trigger words first: never cut
    assert preview.negative_prompt == "blurry, ugly"
    assert preview.loras == (("shine", 0.8),)
    off = studio.generation.preview(MIA, "acme", "a red circle", loras={"shine": 0})
    assert off.prompt == "a red circle, acme style" and off.loras == ()
    with pytest.raises(ValidationError, match="'competitor'") as refused:
        studio.generation.preview(MIA, "acme", "a Competitor logo")
    assert refused.value.field == "prompt"


def test_generate_saves_pngs_with_recipes_and_rows(studio: Any) -> None:
    steps: list[tuple[int, int]] = []
    result = studio.generation.generate(
        MIA,
        GenerateInput(brand="acme", prompt="a red circle", batch_size=2),
        progress=lambda s, t: steps.append((s, t)),
    )
    assert steps[-1] == (6, 6)  # 3 steps x 2 images
    assert result.prompt == "shinystyle, a red circle, acme style" and result.negative_prompt == "blurry"
    assert [image.seed for image in result.images] == [result.seed, result.seed + 1]  # random, recorded
    for image in result.images:
        assert image.path.is_file() and image.path.is_relative_to(studio.settings.images_dir)
        assert (image.width, image.height) == (32, 32) and image.review_status == "pending"
        assert image.palette_score is not None and 0.0 <= image.palette_score <= 1.0
        recipe = read_recipe(image.path)
        assert recipe.seed == image.seed and recipe.prompt_typed == "a red circle"
        assert [(lora.name, lora.weight) for lora in recipe.loras] == [("shine", 0.8)]
        assert "Seed: " in read_parameters(image.path) and "Sampler: Euler" in read_parameters(image.path)
    with studio.engine.connect() as conn:
        counts = [conn.execute(text(f"select count(*) from {t}")).scalar() for t in ("generations", "images")]
        assert counts == [1, 2]
        row = conn.execute(text("select prompt, final_prompt, sampler, steps, cfg from generations")).one()
        assert tuple(row) == ("a red circle", result.prompt, "Euler", 3, 5.0)
        assert conn.execute(text("select weight from generation_loras")).scalar() == 0.8
        author = conn.execute(
            text("select u.username from images i join users u on u.id = i.user_id")
        ).first()
        assert author[0] == "mia"


def test_regenerate_makes_the_same_pixels_with_lora_and_template(studio: Any) -> None:
    first = studio.generation.generate(
        MIA, GenerateInput(brand="acme", prompt="a blue square", seed=7, templates=["frame"], size="wide")
    )
    image = first.images[0]
    assert read_recipe(image.path).controls[0].scale == 1.0
    again = studio.generation.regenerate(MIA, image.id)
    assert again.images[0].id != image.id
    assert again.images[0].pixel_sha256 == image.pixel_sha256
    assert read_recipe(again.images[0].path).to_dict() == {
        **read_recipe(image.path).to_dict(),
        "versions": read_recipe(again.images[0].path).versions,
    }


def test_regenerate_fails_clearly_when_the_lora_file_is_gone(studio: Any) -> None:
    result = studio.generation.generate(MIA, GenerateInput(brand="acme", prompt="a red circle", seed=1))
    for path in studio.settings.loras_dir.rglob("*.safetensors"):
        path.unlink()
    before = _state(studio)
    with pytest.raises(ValidationError, match="LoRA shine .* no longer available"):
        studio.generation.regenerate(MIA, result.images[0].id)
    assert _state(studio) == before


def test_regenerate_fails_clearly_when_the_base_model_is_gone(studio: Any, tmp_path: Path) -> None:
    result = studio.generation.generate(MIA, GenerateInput(brand="acme", prompt="a red circle", steps=1))
    gone = str(tmp_path / "deleted-model")
    with studio.sessions.begin() as session:  # the recipe now names a model folder that is gone
        for generation in session.scalars(select(Generation)):
            generation.recipe = {**generation.recipe, "base_model": gone}
    before = _state(studio)
    with pytest.raises(ModelError, match="base model .*deleted-model.* is not available"):
        studio.generation.regenerate(MIA, result.images[0].id)
    assert _state(studio) == before


BAD_INPUTS: list[tuple[dict[str, Any], str]] = [
    ({"prompt": "   "}, "prompt"),
    ({"cfg": 0.5}, "guidance_scale"),
    ({"cfg": 31}, "guidance_scale"),
    ({"steps": 0}, "num_inference_steps"),
    ({"steps": 151}, "num_inference_steps"),
    ({"width": 33, "height": 32}, "size"),  # not one of acme's presets, and acme allows no custom sizes
    ({"size": "poster"}, "size"),
    ({"sampler": "Heun"}, "sampler"),
    ({"loras": {"shine": 1.6}}, "loras.shine"),
    ({"loras": {"shine": -0.1}}, "loras.shine"),
    ({"loras": {"nope": 1.0}}, "loras"),
    ({"templates": ["nope"]}, "templates"),
    ({"prompt": "a competitor logo"}, "prompt"),
]


def test_bad_input_is_refused_naming_the_field_and_writes_nothing(studio: Any) -> None:
    before = _state(studio)
    for change, field in BAD_INPUTS:
        request = dataclasses.replace(GenerateInput(brand="acme", prompt="a red circle"), **change)
        with pytest.raises(ValidationError) as refused:
            studio.generation.generate(MIA, request)
        assert refused.value.field == field, (change, str(refused.value))
    with pytest.raises(NotFoundError, match="brand 'nope' not found"):
        studio.generation.generate(MIA, GenerateInput(brand="nope", prompt="a red circle"))
    assert _state(studio) == before


def test_only_marketer_members_generate_and_refusals_change_nothing(studio: Any) -> None:
    before = _state(studio)
    with pytest.raises(NotFoundError, match="brand 'acme' not found"):
        studio.generation.generate(OUTSIDER, GenerateInput(brand="acme", prompt="a red circle"))
    with pytest.raises(PermissionDeniedError, match="marketer"):
        studio.generation.generate(REX, GenerateInput(brand="acme", prompt="a red circle"))
    assert _state(studio) == before
    image = studio.generation.generate(MIA, GenerateInput(brand="acme", prompt="a red circle", steps=1))
    with pytest.raises(NotFoundError, match="not found"):
        studio.generation.regenerate(OUTSIDER, image.images[0].id)
    with pytest.raises(NotFoundError, match="image 999 not found"):
        studio.generation.regenerate(MIA, 999)


def test_cancel_stops_the_run_and_writes_nothing(studio: Any) -> None:
    before = _state(studio)
    cancel = threading.Event()
    with pytest.raises(GenerationCancelled):
        studio.generation.generate(
            MIA,
            GenerateInput(brand="acme", prompt="a red circle", steps=5),
            progress=lambda s, t: cancel.set(),
            cancel=cancel,
        )
    assert _state(studio) == before


def test_files_are_removed_when_the_database_write_fails(studio: Any) -> None:
    """The brand disappears while the engine runs: the rows fail (foreign key) and no file stays."""
    images_before = files_under(studio.settings.images_dir)

    def delete_brand(step: int, total: int) -> None:
        if step == 1:
            with studio.engine.begin() as conn:
                conn.execute(text("delete from brands where slug = 'acme'"))

    with pytest.raises(Exception, match="(?i)foreign key"):  # SQLite and PostgreSQL word it differently
        studio.generation.generate(
            MIA, GenerateInput(brand="acme", prompt="a red circle"), progress=delete_brand
        )
    assert files_under(studio.settings.images_dir) == images_before
    with studio.engine.connect() as conn:
        assert conn.execute(text("select count(*) from images")).scalar() == 0


def test_cfg_sweep_keeps_the_seed(studio: Any) -> None:
    results = studio.generation.cfg_sweep(
        MIA, GenerateInput(brand="acme", prompt="a red circle", loras={"shine": 0}), scales=(1.0, 9.0)
    )
    assert [r.cfg for r in results] == [1.0, 9.0]
    assert results[0].seed == results[1].seed
    assert results[0].images[0].pixel_sha256 != results[1].images[0].pixel_sha256


def test_templates_preview_create_and_refuse_bad_images(
    studio: Any, tmp_path: Path, template_png: bytes
) -> None:
    before = _state(studio)
    control = studio.templates.preview(SYSTEM, "acme", template_png, "canny")
    assert control.size == (64, 64)  # the model default size (32), raised to 64 for controlnet-aux
    assert _state(studio) == before  # a preview writes nothing
    with pytest.raises(ModelError, match="hed.*ControlNetHED.pth"):
        studio.templates.preview(SYSTEM, "acme", template_png, "hed")
    with pytest.raises(ValidationError, match="not a readable image"):
        studio.templates.create(SYSTEM, "acme", "junk", b"not an image", "canny")
    bomb = Image.new("1", (20000, 20000))
    bomb_path = tmp_path / "bomb.png"
    bomb.save(bomb_path)
    with pytest.raises(ValidationError, match="decompression bomb"):
        studio.templates.create(SYSTEM, "acme", "bomb", bomb_path, "canny")
    with pytest.raises(PermissionDeniedError):
        studio.templates.create(MIA, "acme", "mine", template_png, "canny")
    assert _state(studio) == before
    made = studio.templates.create(
        SYSTEM, "acme", "lines", template_png, "lineart_standard", conditioning_scale=0.5, guidance_start=0.1
    )
    assert made.control_image_path is not None and made.control_image_path.is_file()
    assert made.control_image_path.is_relative_to(studio.settings.templates_dir)
    options = studio.generation.options(MIA, "acme")
    assert [name for name, _ in options.templates] == ["frame", "lines"]
