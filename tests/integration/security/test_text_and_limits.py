"""Issue 16: length limits on user text, errors without SQL, and ``studio doctor`` over every kind of file.

Real SQLite files, the real services, the real web UI on 127.0.0.1 and the real ``studio`` CLI; no mocks.

- A review comment, a caption, brand fields and the gallery's filters longer than their limits
  (:mod:`studio.text_limits`) are refused with a message naming the field, and nothing changes.
- A zip upload refused for a caption too long leaves no file in ``datasets/``.
- A database error reaches a user (web UI, CLI) as a short generic message, never as SQL.
- ``studio doctor --fix`` on a data folder with a finished training job, a queued one and a dataset removes
  nothing a row names (training samples, quality images, checkpoints, dataset images, a waiting job's
  folders) and finds a real orphan in ``datasets/``.
"""

from __future__ import annotations

import dataclasses
import io
import sqlite3
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher, profiles
from engine_fixtures import fast_cpu  # noqa: F401
from gradio_http import GradioSession
from helpers import DEMO_BRANDS, safetensors_bytes
from live_server import REPO_ROOT, app_env, serve_ui

from studio import text_limits
from studio.config import Settings
from studio.errors import DATABASE_ERROR_MESSAGE, ValidationError
from studio.services.container import build_services
from studio.services.gallery import GalleryFilter
from studio.services.generation import GenerateInput
from studio.services.views import SYSTEM, Actor
from studio.toyworld import world

PASSWORD = "limits-password-1"
SQL_WORDS = ("SELECT", "FROM generations", "[SQL", "parameters", "sqlalche.me")


def build(home: Path) -> Any:
    settings = Settings.from_env({"STUDIO_HOME": str(home)})
    return build_services(settings, password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))


@pytest.fixture
def studio(studio_home: Path) -> Iterator[Any]:
    """Services over a fresh data folder: the demo brands, mia (marketer) and rex (reviewer) in lagoon."""
    services = build(studio_home)
    try:
        services.brands.sync(SYSTEM, DEMO_BRANDS)
        for name, role in (("mia", "marketer"), ("rex", "reviewer")):
            services.users.add_user(SYSTEM, name, [role], PASSWORD)
            services.brands.grant(SYSTEM, "lagoon", name)
        yield services
    finally:
        services.close()


def one_image(services: Any, prompt: str = "a red circle on a white background") -> int:
    request = GenerateInput(brand="lagoon", prompt=prompt, steps=4)
    return services.generation.generate(Actor.user("mia"), request).images[0].id


def dataset_files(home: Path) -> list[Path]:
    return sorted(p for p in (home / "datasets").rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------- text as text


@pytest.mark.parametrize(
    "text",
    [
        "a square ![x](/logout) [a](javascript:alert(1)) <img src=x onerror=alert(1)>",
        "http://host/a www.host.example b@c.de $$x^2$$ `code` *em* _em_ __b__ a|b ~~s~~ \\*",
        "# heading",
        "- item",
        "12. item",
        "teal_0.png, step 2: palette 0.14 (no LoRA)",
    ],
)
def test_escaped_text_holds_no_markdown_or_html_and_reads_the_same(text: str) -> None:
    import html

    from studio.ui.text import escape_markdown

    escaped = escape_markdown(text)
    assert html.unescape(escaped) == text  # every character comes back as typed
    for syntax in ("<", ">", "[", "]", "`", "*", "|", "~", "$", "@", "://", "www.", " _", "_ "):
        assert syntax not in escaped, (syntax, escaped)
    assert not escaped.startswith(("#", "-", "1")), escaped


# ------------------------------------------------------------------------------------------------- limits


def test_a_review_comment_over_the_limit_is_refused_naming_the_field_and_nothing_changes(studio: Any) -> None:
    image_id = one_image(studio)
    rex = Actor.user("rex")
    huge = "x" * (text_limits.REVIEW_COMMENT + 1)
    for decide in (
        lambda: studio.review.decide(rex, image_id, "reject", huge),
        lambda: studio.review.decide(rex, image_id, "approve", huge),
        lambda: studio.review.decide_many(rex, [image_id], "reject", huge),
    ):
        with pytest.raises(ValidationError) as refused:
            decide()
        assert refused.value.field == "comment"
        assert f"{text_limits.REVIEW_COMMENT:,}" in str(refused.value) and len(str(refused.value)) < 200
    detail = studio.gallery.detail(rex, image_id)
    assert detail.item.review_status == "pending" and detail.history == ()
    at_limit = "y" * text_limits.REVIEW_COMMENT
    assert studio.review.decide(rex, image_id, "reject", at_limit).comment == at_limit


def test_brand_fields_over_their_limits_are_refused_naming_the_field(studio: Any, tmp_path: Path) -> None:
    before = studio.brands.spec_of(SYSTEM, "lagoon")
    cases = {
        "banned_terms": {"banned_terms": tuple(f"term{i}" for i in range(text_limits.BANNED_TERMS + 1))},
        "banned_terms[0]": {"banned_terms": ("b" * (text_limits.LIST_ITEM + 1),)},
        "description": {"description": "d" * (text_limits.BRAND_DESCRIPTION + 1)},
        "name": {"name": "n" * (text_limits.BRAND_NAME + 1)},
        "negative_prompt": {"negative_prompt": "n" * (text_limits.BRAND_TEMPLATE + 1)},
    }
    for field, change in cases.items():
        with pytest.raises(ValidationError) as refused:
            studio.brands.update_brand(SYSTEM, "lagoon", dataclasses.replace(before, **change))
        assert refused.value.field.endswith(field), (field, str(refused.value))
        assert len(str(refused.value)) < 300
    assert studio.brands.spec_of(SYSTEM, "lagoon") == before
    lora = tmp_path / "many.safetensors"
    lora.write_bytes(safetensors_bytes())
    words = [f"word{i}" for i in range(text_limits.TRIGGER_WORDS + 1)]
    with pytest.raises(ValidationError) as refused:
        studio.brands.upload_lora(SYSTEM, "lagoon", lora, name="many", trigger_words=words)
    assert "trigger_words" in refused.value.field
    assert "many" not in {a.name for a in studio.brands.get_brand(SYSTEM, "lagoon").adapters}


def test_a_caption_over_the_limit_is_refused_and_a_refused_zip_leaves_no_file(
    studio: Any, studio_home: Path, tmp_path: Path
) -> None:
    dataset = studio.datasets.create_dataset(SYSTEM, "lagoon", "limits")
    square = tmp_path / "teal_square.png"
    world.render(world.Scene("yellow", "square", "white", "center")).save(square)
    added = studio.datasets.add_images(SYSTEM, dataset.id, [square]).dataset
    image = added.images[0]
    with pytest.raises(ValidationError) as refused:
        studio.datasets.set_captions(SYSTEM, dataset.id, {image.id: "c" * (text_limits.CAPTION + 1)})
    assert refused.value.field == "caption"
    assert studio.datasets.get_dataset(SYSTEM, dataset.id).images[0].caption == image.caption

    files_before = dataset_files(studio_home)
    upload = tmp_path / "captioned.zip"
    circle = io.BytesIO()
    world.render(world.Scene("red", "circle", "white", "left")).save(circle, format="PNG")
    with zipfile.ZipFile(upload, "w") as archive:
        archive.writestr("red_circle.png", circle.getvalue())
        archive.writestr("red_circle.txt", "words " * text_limits.CAPTION)
    with pytest.raises(ValidationError) as refused:
        studio.datasets.add_images(SYSTEM, dataset.id, [upload])
    assert dataset_files(studio_home) == files_before, "the refused upload left a file in datasets/"
    assert "red_circle.png" in refused.value.field and "caption" in refused.value.field
    assert len(studio.datasets.get_dataset(SYSTEM, dataset.id).images) == 1


def test_gallery_filters_over_their_limits_are_refused_naming_the_field(studio: Any) -> None:
    one_image(studio)
    mia = Actor.user("mia")
    for field, value in (
        ("text", "a" * 60_000),
        ("author", "m" * (text_limits.FILTER_NAME + 1)),
        ("since", "2" * 5_000),
        ("sort", "s" * 5_000),
    ):
        with pytest.raises(ValidationError) as refused:
            studio.gallery.list_images(mia, GalleryFilter(**{field: value}))
        assert refused.value.field == field and len(str(refused.value)) < 200, str(refused.value)[:300]
    found = studio.gallery.list_images(mia, GalleryFilter(text="a" * text_limits.FILTER_TEXT))
    assert found.items == ()


# ------------------------------------------------------------------------------------------ errors, no SQL


def break_generations_table(home: Path) -> None:
    """A real database error for every gallery query: the table it reads is gone (renamed)."""
    with sqlite3.connect(home / "studio.db") as db:
        db.execute("ALTER TABLE generations RENAME TO generations_gone")


def test_the_web_ui_shows_a_long_filter_and_a_database_error_without_sql(
    studio: Any, studio_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_image(studio)
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    with serve_ui(studio) as url, GradioSession(url, timeout=120) as mia:
        assert mia.login("mia", PASSWORD).status_code == 200
        names = {d.get("api_name") for d in mia.config()["dependencies"]}
        assert "list_page" in names, sorted(n for n in names if n)
        long_text = mia.call_named("list_page", {"Prompt contains": "a" * 60_000})
        assert not long_text.ok and "text" in long_text.error and "at most" in long_text.error
        assert not any(word in long_text.error for word in SQL_WORDS), long_text.error[:500]
        assert len(long_text.error) < 300

        break_generations_table(studio_home)
        broken = mia.call_named("list_page", {"Prompt contains": "circle"})
        assert not broken.ok
        assert DATABASE_ERROR_MESSAGE in broken.error, broken.error[:500]
        assert not any(word in broken.error for word in SQL_WORDS), broken.error[:500]


def test_the_cli_prints_a_database_error_without_sql(studio: Any, studio_home: Path) -> None:
    one_image(studio)
    studio.close()
    break_generations_table(studio_home)
    done = subprocess.run(
        [sys.executable, "-m", "studio.cli", "review", "list"],
        env=app_env(studio_home),
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert DATABASE_ERROR_MESSAGE in done.stderr
    assert not any(word in done.stdout + done.stderr for word in SQL_WORDS), done.stderr[-2000:]


# ------------------------------------------------------------------------------------------------- doctor


def test_doctor_fix_keeps_every_file_a_row_names_and_removes_a_real_dataset_orphan(
    studio: Any,
    studio_home: Path,
    tmp_path: Path,
    fast_cpu: None,  # noqa: F811
) -> None:
    from studio.training.worker import Worker

    dataset = studio.datasets.create_dataset(SYSTEM, "ember", "doctor")
    files = []
    for i, position in enumerate(("center", "left", "right", "top")):
        path = tmp_path / f"red_circle_{i}.png"
        world.render(world.Scene("red", "circle", "black", position)).save(path)
        files.append(path)
    studio.datasets.add_images(SYSTEM, dataset.id, files)
    studio.datasets.caption_all(SYSTEM, dataset.id, template="{trigger}, {filename}", trigger="docsty")
    job = studio.training.queue_training(
        SYSTEM, "ember", "ember-doctor", dataset.id, trigger="docsty", preset="quick", steps=2,
        checkpoint_every=2, batch_size=4, sample_steps=4, sample_prompts=["{trigger}, a red circle"],
        sample_seeds=[1],
    )  # fmt: skip
    worker = Worker(studio.settings)
    try:
        assert worker.run_once() == "succeeded"
    finally:
        worker.close()
    one_image(studio)
    waiting = studio.training.queue_training(
        SYSTEM, "ember", "ember-later", dataset.id, trigger="docsty", preset="quick", steps=2
    )  # a queued job whose worker drew its baseline images before any checkpoint row exists
    baseline = studio_home / "images" / "training" / f"job-{waiting.id}" / "baseline" / "p0-s1.png"
    baseline.parent.mkdir(parents=True)
    baseline.write_bytes(Path(files[1]).read_bytes())
    done = studio.training.get_job(SYSTEM, job.id)
    named = [p for c in done.checkpoints for p in c.sample_paths]
    named += [p for c in done.checkpoints for paths in c.quality_images.values() for p in paths]
    named += [c.file_path for c in done.checkpoints]
    named += [i.file_path for i in studio.datasets.get_dataset(SYSTEM, dataset.id).images]
    assert named and all(Path(p).is_file() for p in named)
    assert any("images/training" in Path(p).as_posix() for p in named), "samples live under images/"
    every_file = sorted(p for p in studio_home.rglob("*") if p.is_file())

    orphan = studio_home / "datasets" / "ab" / ("ab" + "0" * 62 + ".png")  # a refused upload's leftover
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(Path(files[0]).read_bytes())
    studio.close()

    def doctor(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "studio.cli", "doctor", *args],
            env=app_env(studio_home),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )

    checked = doctor()
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert f"orphan file (no row): {orphan.relative_to(studio_home).as_posix()}" in checked.stdout
    assert checked.stdout.count("orphan file") == 1, checked.stdout

    fixed = doctor("--fix", "--grace", "0")
    assert not orphan.exists(), fixed.stdout
    gone = [p for p in every_file if not p.exists() and not p.name.startswith("studio.db")]
    assert gone == [], f"doctor --fix deleted files: {gone}\n{fixed.stdout}"
    assert all(Path(p).is_file() for p in named) and baseline.is_file()
    assert doctor().returncode == 0, doctor().stdout
