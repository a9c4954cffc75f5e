"""What the Generate form relies on, through the real services (SQLite file, tiny SD pipeline, no mocks).

Issue 15: when the model would not read the whole prompt, the prompt as sent puts the brand's trigger
words first, so a text encoder that reads only the first tokens never cuts them, and a token counter says
what is cut; every number out of range is named
(no silent clamp); a cancel keeps the images finished before it; downloads are named
``<brand>-<id>-<seed>.png``; a template's thumbnail shows its source image, not a black control map.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from helpers import files_under
from PIL import ImageStat
from sqlalchemy import text

from studio.engine.generate import GenerationCancelled
from studio.engine.recipe import read_recipe
from studio.errors import NotFoundError, PermissionDeniedError, ValidationError
from studio.services.generation import GenerateInput
from studio.services.views import Actor

MIA, OUTSIDER, REX = Actor.user("mia"), Actor.user("olga"), Actor.user("rex")
#: longer than the tiny CLIP tokenizer's 16 tokens (14 between its start and end tokens)
LONG = "a red circle on a white background with a blue square on a gray background at the top"


def _fields(problems: tuple[Exception, ...]) -> dict[str, str]:
    return {getattr(p, "field", type(p).__name__): str(p) for p in problems}


def test_trigger_words_go_first_and_the_counter_names_what_is_cut(studio: Any) -> None:
    check = studio.generation.check_prompt(MIA, "acme", LONG)
    assert check.prompt == f"shinystyle, {LONG}, acme style"
    assert check.limit == 14 and check.tokens > check.limit
    assert check.cut and "shinystyle" not in check.cut and check.cut.endswith("acme style")
    assert check.prompt.endswith(check.cut) and check.trigger_words == ("shinystyle",)
    assert check.known_words is None and check.unknown_words == ()  # not a fixed-vocabulary model

    off = studio.generation.check_prompt(MIA, "acme", "a red circle", {"shine": 0})
    assert off.prompt == "a red circle, acme style" and off.trigger_words == ()
    assert off.cut == "" and off.tokens == 9  # "acme" is 4 letter tokens to this tokenizer
    assert studio.generation.check_prompt(MIA, "acme", "").tokens > 0  # the template alone, no refusal
    assert studio.generation.check_prompt(MIA, "acme", "a competitor logo").banned_term == "competitor"
    with pytest.raises(NotFoundError):
        studio.generation.check_prompt(OUTSIDER, "acme", "a red circle")
    with pytest.raises(PermissionDeniedError):
        studio.generation.check_prompt(REX, "acme", "a red circle")

    result = studio.generation.generate(MIA, GenerateInput(brand="acme", prompt=LONG, steps=1, seed=3))
    recipe = read_recipe(result.images[0].path)
    assert recipe.prompt == check.prompt and recipe.prompt_typed == LONG  # as sent and as typed


def test_trigger_words_move_first_only_when_the_prompt_is_cut() -> None:
    from studio.services.generation_prompt import assemble_prompt

    args = ("{prompt}, emberstyle", "a circle", ["emberstyle"])
    assert assemble_prompt(*args, fits=lambda text: True) == "a circle, emberstyle"  # the brand's order
    assert assemble_prompt(*args, fits=lambda text: False) == "emberstyle, a circle"
    assert assemble_prompt("{prompt}, x style", "a Shine dot", ["shine"], fits=lambda t: False) == (
        "shine, a dot, x style"
    )
    unused = assemble_prompt("{prompt}, emberstyle", "a circle", [], ["emberstyle"], fits=lambda t: False)
    assert unused == "emberstyle, a circle"  # a brand trigger word in the template goes first too


def test_the_embedded_model_counts_its_32_tokens_and_flags_unknown_words() -> None:
    from studio.engine.tokens import count_tokens, known_words, unknown_words
    from studio.toyworld import MODEL_DIR

    count = count_tokens(MODEL_DIR, "sd1", "a red circle on a white background, left, acmesty")
    assert (count.tokens, count.limit, count.cut) == (17, 30, "")  # issue 18: 16 tokens cut "acmesty"
    twice = "a red circle on a white background, left, a blue square on a teal background, right, "
    twice += "a green triangle, acmesty"
    long = count_tokens(MODEL_DIR, "sd1", twice)
    assert long.tokens > long.limit == 30 and long.cut.endswith("acmesty")
    first = count_tokens(MODEL_DIR, "sd1", "acmesty, " + twice.removesuffix(", acmesty"))
    assert "acmesty" not in first.cut
    known = known_words("embedded:toyworld")
    assert known is not None and {"red", "circle", "teal", "left"} <= set(known)
    assert unknown_words("a blue sneaker on a teal background, acmesty", known, ("acmesty",)) == ("sneaker",)
    assert known_words("org/model") is None


def test_counting_tokens_reads_tokenizer_files_only(engine: Any, model_dir: Any) -> None:
    engine.clear_cache()
    count = engine.count_tokens(LONG, str(model_dir))
    assert count.tokens > count.limit == 14 and count.encoders[0].folder == "tokenizer"
    assert not engine.pipelines._models  # no pipeline (no weights) was loaded for it


def test_check_names_every_number_out_of_range_and_each_refusal(studio: Any) -> None:
    ok = GenerateInput(brand="acme", prompt="a red circle")
    assert studio.generation.check(MIA, ok) == ()
    wrong = _fields(
        studio.generation.check(MIA, GenerateInput(brand="acme", prompt="x", steps=10000, cfg=-3))
    )
    assert wrong == {"steps": "steps: 10000 is outside 1-150", "cfg": "cfg: -3 is outside 1-30"}
    numbers = GenerateInput(brand="acme", prompt="x", batch_size=9, seed=-1, loras={"shine": 2})
    assert set(_fields(studio.generation.check(MIA, numbers))) == {"batch_size", "seed", "loras.shine"}
    assert (
        "whole number"
        in _fields(studio.generation.check(MIA, GenerateInput(brand="acme", prompt="x", steps=2.5)))["steps"]
    )
    assert _fields(studio.generation.check(MIA, GenerateInput(brand="acme", prompt=" "))) == {
        "prompt": "prompt: must not be empty"
    }
    assert (
        "competitor"
        in _fields(studio.generation.check(MIA, GenerateInput(brand="acme", prompt="competitor")))["prompt"]
    )
    assert set(
        _fields(studio.generation.check(MIA, GenerateInput(brand="acme", prompt="x", size="huge")))
    ) == {"size"}
    assert set(_fields(studio.generation.check(OUTSIDER, ok))) == {"NotFoundError"}
    assert set(_fields(studio.generation.check(REX, ok))) == {"PermissionDeniedError"}
    with pytest.raises(ValidationError, match="steps: 10000 is outside 1-150"):  # generate refuses the same
        studio.generation.generate(MIA, GenerateInput(brand="acme", prompt="x", steps=10000))


def test_cancel_keeps_the_finished_images(studio: Any) -> None:
    cancel = threading.Event()

    def progress(step: int, total: int) -> None:
        if step == 4:  # the first step of the second image (3 steps each)
            cancel.set()

    ask = GenerateInput(brand="acme", prompt="a red circle", steps=3, batch_size=3, seed=21)
    result = studio.generation.generate(MIA, ask, progress=progress, cancel=cancel)
    assert result.cancelled and result.requested == 3 and len(result.images) == 1
    (image,) = result.images
    assert image.path.is_file() and image.seed == 21
    with studio.engine.connect() as conn:
        assert conn.execute(text("select count(*), max(batch_size) from generations")).one() == (1, 1)
        assert conn.execute(text("select count(*) from images")).scalar() == 1

    before = files_under(studio.settings.images_dir)
    early = threading.Event()
    with pytest.raises(GenerationCancelled):  # cancelled in the first image: nothing to keep
        studio.generation.generate(MIA, ask, progress=lambda s, t: early.set(), cancel=early)
    assert files_under(studio.settings.images_dir) == before


def test_a_cancelled_cfg_sweep_keeps_the_scales_done(studio: Any) -> None:
    cancel = threading.Event()

    def progress(step: int, total: int) -> None:
        if step == 3:  # the first step of the second scale (2 steps each)
            cancel.set()

    ask = GenerateInput(brand="acme", prompt="a red circle", steps=2, loras={"shine": 0})
    results = studio.generation.cfg_sweep(MIA, ask, scales=(2.0, 5.0, 9.0), progress=progress, cancel=cancel)
    assert [r.cfg for r in results] == [2.0] and results[-1].cancelled


def test_downloads_are_named_brand_id_seed(studio: Any) -> None:
    result = studio.generation.generate(
        MIA, GenerateInput(brand="acme", prompt="a red circle", steps=1, seed=8)
    )
    (image,) = result.images
    assert image.download_path is not None and image.download_path.name == f"acme-{image.id}-8.png"
    assert image.download_path.read_bytes() == image.path.read_bytes()
    assert image.download_path.is_relative_to(studio.settings.home / "exports")  # served, outside images/


def test_template_thumbnail_shows_the_source_image(studio: Any) -> None:
    options = studio.generation.options(MIA, "acme")
    ((name, thumb),) = options.thumbnails
    assert name == "frame" and thumb is not None
    assert ImageStat.Stat(thumb.convert("L")).mean[0] > 128  # red square on white, not edges on black


def test_a_model_without_a_readable_tokenizer_is_reported_not_raised(
    studio: Any, model_dir: Any, tmp_path: Any
) -> None:
    import dataclasses
    import shutil

    from studio.services.views import SYSTEM

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    spec = dataclasses.replace(
        studio.brands.spec_of(SYSTEM, "acme"), slug="beta", name="Beta", base_model=str(copy)
    )
    studio.brands.create_brand(SYSTEM, spec)
    studio.brands.grant(SYSTEM, "beta", "mia")
    shutil.rmtree(copy / "tokenizer")
    check = studio.generation.check_prompt(MIA, "beta", "a red circle")
    assert check.limit == 0 and "no tokenizer folder" in check.problem
    assert check.prompt == "a red circle, acme style"  # the brand's order when nothing can be counted
