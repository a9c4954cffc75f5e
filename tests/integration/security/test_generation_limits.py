"""What one user may ask of the GPU (issue 16): caps per model family, sizes from the brand's presets, prompt
lengths and banned terms on every path (form check, generate, regenerate, remix, API, CLI), each user's share
of the web queue, and requests whose client has gone away never run.

The brand ``acme`` runs on a tiny random SD1 pipeline (family ``sd1``) with presets square 32x32 and wide
48x32; mia and max are marketer members, ada an admin. The web tests run the studio UI on 127.0.0.1 as
``app.py`` builds it and call it as a browser page does (``gradio_http``).
"""

from __future__ import annotations

import ast
import dataclasses
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from engine_fixtures import fast_cpu, sd1_dir  # noqa: F401
from gradio_http import GradioSession
from helpers import files_under, snapshot
from live_server import serve_ui
from sqlalchemy import select, update
from typer.testing import CliRunner

from studio.cli import app as cli_app
from studio.config import Settings, SettingsError, family_limits_from_env
from studio.db.generation_models import Generation, Image
from studio.engine.limits import DEFAULT_FAMILY_LIMITS, MAX_PROMPT_CHARS, family_key
from studio.errors import PermissionDeniedError, ValidationError
from studio.services.banned_terms import banned_term_in
from studio.services.brand_files import BrandSpec, SizePreset, parse_brand_file, render_brand_toml
from studio.services.generation import EngineProvider, GenerateInput, GenerationService
from studio.services.views import SYSTEM, Actor
from studio.ui.brands_tab import spec_from_form

PASSWORD = "correct horse battery"
MIA, MAX, ADA = Actor.user("mia"), Actor.user("max"), Actor.user("ada")
FAST = {"steps": 1, "seed": 3}


@pytest.fixture(scope="module")
def engine(sd1_dir: Path) -> Any:  # noqa: F811
    from studio.engine.generate import Engine

    return Engine(str(sd1_dir), device="cpu")


@pytest.fixture
def studio(services: Any, engine: Any, sd1_dir: Path) -> Any:  # noqa: F811
    """Services on the shared tiny engine; brand acme (sd1) with two presets and banned terms."""
    provider = EngineProvider(services.settings, factory=lambda: engine)
    built = dataclasses.replace(
        services,
        engines=provider,
        generation=GenerationService(services.sessions, services.settings, provider),
    )
    spec = BrandSpec(
        slug="acme",
        name="Acme",
        palette=("#ff0000", "#ffffff"),
        style_template="{prompt}, acme style",
        banned_terms=("competitor", "acme corp"),
        size_presets=(SizePreset("square", "feed", 32, 32), SizePreset("wide", "web", 48, 32)),
        default_size="square",
        default_steps=2,
        default_sampler="Euler",
        base_model=str(sd1_dir),
    )
    built.brands.create_brand(SYSTEM, spec)
    for name, roles in (("mia", ["marketer"]), ("max", ["marketer"]), ("ada", ["admin"])):
        built.users.add_user(SYSTEM, name, roles, PASSWORD)
        built.brands.grant(SYSTEM, "acme", name)
    return built


def _with_limits(studio: Any, env: dict[str, str]) -> GenerationService:
    """The generation service of ``studio`` under settings with ``STUDIO_LIMITS_*`` from ``env``."""
    settings = dataclasses.replace(studio.settings, family_limits=family_limits_from_env(env))
    return GenerationService(studio.sessions, settings, studio.engines)


def _fields(problems: Any) -> dict[str, str]:
    return {getattr(p, "field", type(p).__name__): str(p) for p in problems}


def _generations(studio: Any) -> list[Any]:
    return snapshot(studio)["generations"]


# ------------------------------------------------------------------------------ caps per model family


def test_the_attack_of_4096_squared_8_images_150_steps_is_refused_naming_each_field(studio: Any) -> None:
    studio.brands.set_custom_sizes(SYSTEM, "acme", True)  # even where custom sizes are allowed
    attack = GenerateInput(brand="acme", prompt="a red circle", size="4096x4096", batch_size=8, steps=150)
    problems = _fields(studio.generation.check(MIA, attack))
    assert set(problems) == {"size", "batch_size", "steps"}, problems
    assert "150 is more than 50 steps, the limit for sd1 models" in problems["steps"]
    assert "8 images is more than 4, the limit for sd1 models" in problems["batch_size"]
    assert "4096x4096 is 16,777,216 pixels, more than 1,048,576" in problems["size"]
    before = snapshot(studio)
    for field, change in (("steps", {"steps": 51}), ("batch_size", {"batch_size": 5}), ("size", {})):
        ask = dataclasses.replace(attack, **{"size": "32x32", "batch_size": 1, "steps": 2, **change})
        if field == "size":
            ask = dataclasses.replace(ask, size="1056x1024")
        with pytest.raises(ValidationError) as refused:
            studio.generation.generate(MIA, ask)
        assert refused.value.field == field
    assert snapshot(studio) == before
    within = studio.generation.generate(MIA, dataclasses.replace(attack, size="32x32", batch_size=2, steps=2))
    assert len(within.images) == 2


def test_the_caps_are_settings_per_family(studio: Any) -> None:
    tight = _with_limits(studio, {"STUDIO_LIMITS_SD1": "pixels=32x32,images=2,steps=3"})
    problems = _fields(
        tight.check(MIA, GenerateInput(brand="acme", prompt="x", size="wide", steps=4, batch_size=3))
    )
    assert set(problems) == {"size", "steps", "batch_size"}
    assert "more than 1,024 (about 32x32), the limit for sd1 models" in problems["size"]
    assert (
        tight.check(MIA, GenerateInput(brand="acme", prompt="x", size="square", steps=3, batch_size=2)) == ()
    )
    options = tight.options(MIA, "acme")
    assert options.limits is not None and (options.limits.steps, options.limits.images) == (3, 2)

    assert family_key("embedded:toyworld", "sd1") == "embedded" and family_key("x", "sdxl") == "sdxl"
    assert family_key("x", None) == "sd1"  # a model that cannot be read: the tighter SD1 caps
    settings = Settings.from_env({"STUDIO_HOME": "/tmp/h", "STUDIO_LIMITS_SDXL": "steps=30"})
    assert settings.limits_for("sdxl").steps == 30
    assert settings.limits_for("sdxl").pixels == DEFAULT_FAMILY_LIMITS["sdxl"].pixels
    assert settings.max_queued_per_user == 4
    for bad in ("steps=0", "pixels=huge", "frames=2", "steps=151", "images=9"):
        with pytest.raises(SettingsError, match="STUDIO_LIMITS_SD3"):
            Settings.from_env({"STUDIO_HOME": "/tmp/h", "STUDIO_LIMITS_SD3": bad})
    with pytest.raises(SettingsError, match="STUDIO_MAX_QUEUED_PER_USER"):
        Settings.from_env({"STUDIO_HOME": "/tmp/h", "STUDIO_MAX_QUEUED_PER_USER": "0"})


# ----------------------------------------------------------------------------- sizes: presets or custom


def test_sizes_are_the_brands_presets_unless_an_admin_allows_custom_sizes(
    studio: Any, tmp_path: Path
) -> None:
    before = snapshot(studio)
    for ask in (
        GenerateInput(brand="acme", prompt="a red circle", size="40x24", **FAST),
        GenerateInput(brand="acme", prompt="a red circle", width=40, height=24, **FAST),
    ):
        with pytest.raises(ValidationError, match="size: 40x24 is not a size of brand acme"):
            studio.generation.generate(MIA, ask)
    assert snapshot(studio) == before
    preset_by_numbers = GenerateInput(brand="acme", prompt="a red circle", width=48, height=32, **FAST)
    assert studio.generation.check(MIA, preset_by_numbers) == ()  # a preset's own width and height

    with pytest.raises(PermissionDeniedError):
        studio.brands.set_custom_sizes(MIA, "acme", True)
    assert studio.brands.set_custom_sizes(ADA, "acme", True).allow_custom_sizes
    made = studio.generation.generate(
        MIA, GenerateInput(brand="acme", prompt="a red circle", size="40x24", **FAST)
    )
    image = made.images[0]
    assert (image.width, image.height) == (40, 24)
    assert studio.generation.options(MIA, "acme").allow_custom_sizes

    # off again: the image's own recipe still regenerates, and its remix (its size) still generates
    studio.brands.set_custom_sizes(ADA, "acme", False)
    again = studio.generation.regenerate(MIA, image.id)
    assert (again.images[0].width, again.images[0].height) == (40, 24)
    remix = studio.gallery.remix(MIA, image.id)
    assert (remix.width, remix.height) == (40, 24)
    assert len(studio.generation.generate(MIA, remix).images) == 1
    # ...but only for someone who may see that image: max may not (it is mia's and pending)
    with pytest.raises(ValidationError, match="size: 40x24 is not a size"):
        studio.generation.generate(MAX, dataclasses.replace(remix, seed=1))

    # the setting travels with the brand: brand.toml, the Brands tab's form, the CLI
    spec = studio.brands.spec_of(SYSTEM, "acme")
    assert not spec.allow_custom_sizes and "allow_custom_sizes" not in render_brand_toml(spec)
    allowed = dataclasses.replace(spec, allow_custom_sizes=True)
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / "brand.toml").write_text(render_brand_toml(allowed))
    assert parse_brand_file(tmp_path / "acme" / "brand.toml").allow_custom_sizes
    form = spec_from_form(
        "acme", "Acme", "", "#ff0000", "{prompt}", "", "", "square | feed | 32x32", 7, 20, "Euler", "", True
    )
    assert form.allow_custom_sizes and not spec_from_form(*_form_fields()).allow_custom_sizes


def _form_fields() -> tuple[Any, ...]:
    return ("acme", "Acme", "", "#ff0000", "{prompt}", "", "", "square | feed | 32x32", 7, 20, "Euler")


def test_the_cli_sets_custom_sizes_and_refuses_what_the_web_refuses(
    studio: Any, studio_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_HOME", str(studio_home))
    runner = CliRunner()
    base = ["generate", "--brand", "acme", "--user", "mia", "--steps", "1"]
    refused = runner.invoke(cli_app, [*base, "--prompt", "a red circle", "--size", "40x24"])
    assert refused.exit_code == 1 and "size: 40x24 is not a size of brand acme" in refused.output
    refused = runner.invoke(cli_app, [*base, "--prompt", "a red circle", "--batch", "5"])
    assert refused.exit_code == 1 and "batch_size: 5 images is more than 4" in refused.output
    refused = runner.invoke(cli_app, [*base, "--prompt", "x" * (MAX_PROMPT_CHARS + 1)])
    assert refused.exit_code == 1 and f"at most {MAX_PROMPT_CHARS:,} are allowed" in refused.output
    refused = runner.invoke(cli_app, [*base, "--prompt", "a ｃｏｍｐｅｔｉｔｏｒ logo"])
    assert refused.exit_code == 1 and "banned" in refused.output
    shown = runner.invoke(cli_app, ["brands", "custom-sizes", "acme", "on"])
    assert shown.exit_code == 0 and "custom sizes allowed" in shown.output
    assert "custom sizes: allowed" in runner.invoke(cli_app, ["brands", "show", "acme"]).output
    made = runner.invoke(cli_app, [*base, "--prompt", "a red circle", "--size", "40x24", "--json"])
    assert made.exit_code == 0, made.output
    assert json.loads(made.stdout)["images"][0]["width"] == 40


# ------------------------------------------------------------------------------------------ banned terms

DODGES = [
    "two competitors",  # plural
    "competitores",  # plural (es)
    "a competitor_logo",  # underscore
    "com\u200bpetitor",  # zero-width space
    "comp\u00adeti\u2060tor",  # soft hyphen, word joiner
    "ｃｏｍｐｅｔｉｔｏｒ",  # fullwidth
    "\u0441omp\u0435titor",  # Cyrillic с and е
    "COMPΕTITOR",  # Greek capital epsilon
    "c.o.m.p.e.t.i.t.o.r",  # a separator between the letters
    "c o m p e t i t o r",
    "compétitor",  # an accent
    "ACME-CORP tee",  # a multi-word term with a separator
    "acme_corp",
    "acme.corp",
    "acme  corp",
    "acmecorp",
    "Acme Corps",
]


def test_banned_terms_are_matched_through_the_usual_dodges(studio: Any) -> None:
    before = snapshot(studio)
    for prompt in DODGES:
        assert banned_term_in(prompt, ("competitor", "acme corp")) is not None, prompt
        with pytest.raises(ValidationError, match="a term banned by brand acme") as refused:
            studio.generation.generate(MIA, GenerateInput(brand="acme", prompt=f"a red circle, {prompt}"))
        assert refused.value.field == "prompt"
        assert studio.generation.check_prompt(MIA, "acme", prompt).banned_term is not None
    assert snapshot(studio) == before
    for fine in ("competitive pricing", "a composition", "incompetitorial", "acme coffee", "corporate acme"):
        assert banned_term_in(fine, ("competitor", "acme corp")) is None, fine
        assert studio.generation.check(MIA, GenerateInput(brand="acme", prompt=fine)) == ()


def test_regenerate_and_remix_check_banned_terms_of_today(studio: Any) -> None:
    made = studio.generation.generate(MIA, GenerateInput(brand="acme", prompt="a rival logo", **FAST))
    image_id = made.images[0].id
    spec = studio.brands.spec_of(SYSTEM, "acme")
    studio.brands.update_brand(
        SYSTEM, "acme", dataclasses.replace(spec, banned_terms=(*spec.banned_terms, "rival"))
    )
    before = snapshot(studio)
    with pytest.raises(ValidationError, match="prompt: contains 'rival', a term banned by brand acme"):
        studio.generation.regenerate(MIA, image_id)
    with pytest.raises(ValidationError, match="'rival'"):
        studio.generation.generate(MIA, studio.gallery.remix(MIA, image_id))
    assert snapshot(studio) == before


# ---------------------------------------------------------------------------------------- prompt length


def test_prompt_length_is_refused_on_every_path_naming_the_field(studio: Any) -> None:
    long = "a red circle " * 200  # 2,600 characters
    for field, ask in (
        ("prompt", GenerateInput(brand="acme", prompt=long)),
        ("negative_prompt", GenerateInput(brand="acme", prompt="a red circle", negative_prompt=long)),
    ):
        problems = _fields(studio.generation.check(MIA, ask))
        assert problems == {field: f"{field}: is {len(long):,} characters long; at most 2,000 are allowed"}
        with pytest.raises(ValidationError) as refused:
            studio.generation.generate(MIA, ask)
        assert refused.value.field == field
    counted = studio.generation.check_prompt(MIA, "acme", long)  # the token line, on every keystroke
    assert counted.tokens == 0 and "prompt: is 2,600 characters long" in counted.problem

    made = studio.generation.generate(MIA, GenerateInput(brand="acme", prompt="a red circle", **FAST))
    with studio.sessions.begin() as session:  # a recipe from before the limit, or edited in the database
        session.execute(update(Generation).values(negative_prompt=long))
    with pytest.raises(ValidationError) as refused:
        studio.generation.regenerate(MIA, made.images[0].id)
    assert refused.value.field == "negative_prompt"


# ------------------------------------------------------------------------------------ the web queue


@pytest.fixture
def web(studio: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    with serve_ui(studio) as url:
        yield url


def _form(page: GradioSession, api_name: str = "generate", **values: Any) -> tuple[int, list[Any]]:
    """An endpoint's fn_index and its inputs: the form's defaults, ``values`` by label."""
    config = page.config()
    dep = next(d for d in config["dependencies"] if d.get("api_name") == api_name)
    components = {c["id"]: c for c in config["components"]}
    data = []
    for cid in dep["inputs"]:
        component = components[cid]
        label = component["props"].get("label")
        data.append(
            None if component["type"] == "state" else values.get(label, component["props"].get("value"))
        )
    return dep["id"], data


def _join(page: GradioSession, fn_index: int, data: list[Any]) -> Any:
    """Join the queue as a page would, and never read the result (a client that went away)."""
    body = {
        "data": data,
        "fn_index": fn_index,
        "session_hash": page.session_hash,
        "event_data": None,
        "trigger_id": None,
    }
    return page.http.post("/gradio_api/queue/join", json=body)


ASK = {"Brand": "acme", "Prompt": "a red circle", "Steps": 2, "Size": "square", "Images": 1}


def test_a_user_over_their_share_of_the_queue_is_told_at_once_and_others_are_not(
    studio: Any, web: str
) -> None:
    """max keeps the GPU busy (a large run, cancelled at the end), so mia's requests wait in the queue."""
    studio.brands.set_custom_sizes(SYSTEM, "acme", True)
    busy = {**ASK, "Size": "256x256", "Steps": 50, "Images": 4}  # about a second a step here: minutes
    started = threading.Event()

    def starts(message: dict[str, Any]) -> None:
        if message.get("msg") == "process_starts":
            started.set()

    with (
        GradioSession(web, timeout=300) as mia,
        GradioSession(web, timeout=300) as max_,
        ThreadPoolExecutor(1) as pool,
    ):
        assert mia.login("mia", PASSWORD).status_code == 200
        assert max_.login("max", PASSWORD).status_code == 200
        fn_index, data = _form(mia, **ASK)
        regenerate_fn = _form(mia, "regenerate")
        blocker = pool.submit(max_.call_named, "generate", busy, on_message=starts)
        assert started.wait(120), "the large run did not start"

        joined = [_join(mia, fn_index, data) for _ in range(4)]
        assert [r.status_code for r in joined] == [200] * 4, [r.text for r in joined]
        over = _join(mia, fn_index, data)  # told at once, nothing queued
        assert over.status_code == 422 and "at most 4 at a time" in over.text, over.text
        regenerate = _join(mia, *regenerate_fn)  # the Gallery's Regenerate shares the count
        assert regenerate.status_code in (400, 422) and "at most 4 at a time" in regenerate.text, (
            regenerate.text
        )
        assert max_.call_named("cancel", {}).ok
        blocker.result(timeout=300)

        outcome = max_.call_named("generate", ASK)  # another user is not blocked by mia's share
        assert outcome.ok, outcome.error
        again = mia.call_named(
            "generate", ASK
        )  # mia's four (nobody read them) were dropped: her share is free
        assert again.ok, again.error


def test_requests_whose_client_went_away_never_run(studio: Any, web: str) -> None:
    with GradioSession(web, timeout=180) as mia, GradioSession(web, timeout=180) as max_:
        assert mia.login("mia", PASSWORD).status_code == 200
        assert max_.login("max", PASSWORD).status_code == 200
        fn_index, data = _form(mia, **ASK)
        joined = [_join(mia, fn_index, data) for _ in range(2)]  # then mia's page is gone: nobody reads
        assert [r.status_code for r in joined] == [200] * 2, [r.text for r in joined]

        outcome = max_.call_named("generate", ASK)  # queued after mia's two (one queue, in order)
        assert outcome.ok, outcome.error
        rows = _generations(studio)
        assert len(rows) == 1  # max's only: mia's abandoned requests made no rows...
        assert len(files_under(studio.settings.images_dir)) == 1  # ...and no files


def test_migration_0009_starts_every_brand_with_custom_sizes_off(settings: Settings) -> None:
    """0009 adds ``brands.allow_custom_sizes`` (false); its downgrade drops the column and keeps the rows."""
    import sqlite3

    from alembic import command

    from studio.db import migrate

    migrate.upgrade(settings, "0008")
    with sqlite3.connect(settings.sqlite_path) as db:
        db.execute(
            "insert into brands (slug, name, description, palette, style_template, negative_prompt,"
            " banned_terms, size_presets, default_cfg, default_steps, default_sampler, created_at,"
            " updated_at) values ('old', 'Old', '', '[]', '{prompt}', '', '[]', '[]', 7, 20, 'Euler',"
            " '2026-01-01', '2026-01-01')"
        )
    migrate.upgrade(settings)
    with sqlite3.connect(settings.sqlite_path) as db:
        assert db.execute("select slug, allow_custom_sizes from brands").fetchall() == [("old", 0)]
    command.downgrade(migrate.alembic_config(settings), "0008")
    with sqlite3.connect(settings.sqlite_path) as db:
        assert db.execute("select slug from brands").fetchall() == [("old",)]
        assert "allow_custom_sizes" not in {row[1] for row in db.execute("pragma table_info(brands)")}


class _Leave(Exception):
    """Raised from a message callback: the client closes its result stream (the page went away)."""


def test_a_run_whose_client_leaves_stops_at_the_next_step(studio: Any, web: str) -> None:
    """max's large run (200 steps, about a second each here) loses its reader once it starts; it stops within
    a step of Gradio noticing, so mia's request runs next and max's run left fewer than its four images."""
    studio.brands.set_custom_sizes(SYSTEM, "acme", True)
    busy = {**ASK, "Size": "256x256", "Steps": 50, "Images": 4}

    def leave(message: dict[str, Any]) -> None:
        if message.get("msg") == "process_starts":
            raise _Leave

    with GradioSession(web, timeout=600) as max_, GradioSession(web, timeout=600) as mia:
        assert max_.login("max", PASSWORD).status_code == 200
        assert mia.login("mia", PASSWORD).status_code == 200
        with pytest.raises(_Leave):
            max_.call_named("generate", busy, on_message=leave)
        outcome = mia.call_named("generate", ASK)
        assert outcome.ok, outcome.error
    with studio.sessions() as session:
        widths = list(session.scalars(select(Image.width)))
    assert widths.count(256) < 4 and widths.count(32) == 1, widths


def test_the_web_form_refuses_what_the_services_refuse_naming_the_field(studio: Any, web: str) -> None:
    """Through the Generate endpoint as the page calls it: each refusal is a mark under its field."""
    with GradioSession(web, timeout=120) as mia:
        assert mia.login("mia", PASSWORD).status_code == 200
        for change, field, says in (
            ({"Steps": 60}, "steps", "60 is more than 50 steps, the limit for sd1 models"),
            ({"Images": 5}, "batch_size", "5 images is more than 4"),
            ({"Size": "40x24"}, "size", "40x24 is not a size of brand acme"),
            ({"Prompt": "x" * 2001}, "prompt", "at most 2,000 are allowed"),
            ({"Negative prompt": "x" * 2001}, "negative_prompt", "at most 2,000 are allowed"),
            ({"Prompt": "two ｃｏｍｐｅｔｉｔｏｒｓ"}, "prompt", "a term banned by brand acme"),
        ):
            outcome = mia.call_named("generate", {**ASK, **change})
            assert not outcome.ok and outcome.status == 422, (change, outcome)
            marks = {m.get("parameter_name"): m.get("message", "") for m in ast.literal_eval(outcome.error)}
            assert says in marks[field], (change, marks)
    assert _generations(studio) == []
