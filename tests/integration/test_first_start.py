"""Issue 15, item 1: the first start on an empty data folder is a working studio. ``studio.web.main`` (what
``python app.py`` and ``studio serve`` run) imports the demo brands from ``brands/`` and grants them to the
first admin; ``STUDIO_DEMO_BRANDS=0`` leaves them out; a studio that has brands is left alone. Real SQLite
files; Gradio's ``launch`` is the only thing replaced (these tests do not serve)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from helpers import DEMO_BRANDS
from typer.testing import CliRunner

from studio.config import Settings, SettingsError
from studio.services.first_start import DEMO_BRANDS_DIR, first_start
from studio.services.views import SYSTEM


def memberships(home: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(home / "studio.db") as connection:
        return connection.execute(
            "select u.username, b.slug from brand_members m join users u on u.id = m.user_id "
            "join brands b on b.id = m.brand_id order by 1, 2"
        ).fetchall()


def brand_slugs(home: Path) -> list[str]:
    with sqlite3.connect(home / "studio.db") as connection:
        return [slug for (slug,) in connection.execute("select slug from brands order by 1")]


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """Blocks.launch replaced by a recorder: main() builds everything, then returns."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))  # main() sets them if unset
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    monkeypatch.setattr("gradio.Blocks.launch", lambda self, **kwargs: calls.append(kwargs))
    monkeypatch.setenv("STUDIO_ADMIN_PASSWORD", "first-start-password")
    return calls


def test_the_demo_brands_folder_is_the_repositorys() -> None:
    assert DEMO_BRANDS_DIR.resolve() == DEMO_BRANDS.resolve()


def test_first_start_imports_the_demo_brands_for_the_first_admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, launched: list[dict[str, Any]], capsys: Any
) -> None:
    from studio.web import main

    home = tmp_path / "home"
    monkeypatch.setenv("STUDIO_HOME", str(home))
    assert main(["--no-worker"]) == 0
    assert launched, "the app was launched"
    assert brand_slugs(home) == ["ember", "lagoon"]
    assert memberships(home) == [("admin", "ember"), ("admin", "lagoon")]
    assert "Imported the demo brands ember, lagoon for admin" in capsys.readouterr().out
    # the second start changes nothing (the admin exists), even after a brand was removed from the admin
    with sqlite3.connect(home / "studio.db") as connection:
        connection.execute("delete from brand_members")
    assert main(["--no-worker"]) == 0
    assert memberships(home) == []
    assert "Imported" not in capsys.readouterr().out


def test_studio_demo_brands_0_turns_it_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, launched: list[dict[str, Any]]
) -> None:
    from studio.cli import app

    home = tmp_path / "home"
    monkeypatch.setenv("STUDIO_HOME", str(home))
    monkeypatch.setenv("STUDIO_DEMO_BRANDS", "0")
    result = CliRunner().invoke(app, ["serve", "--no-worker", "--port", "7998"])  # studio serve = main()
    assert result.exit_code == 0, result.output
    assert launched and launched[0]["server_port"] == 7998
    assert brand_slugs(home) == []
    shown = CliRunner().invoke(app, ["config"])
    assert "demo_brands = False" in shown.stdout and "STUDIO_DEMO_BRANDS" in shown.stdout


def test_the_setting_is_read_strictly() -> None:
    assert Settings.from_env({"STUDIO_HOME": "/tmp/x"}).demo_brands is True
    assert Settings.from_env({"STUDIO_HOME": "/tmp/x", "STUDIO_DEMO_BRANDS": "off"}).demo_brands is False
    with pytest.raises(SettingsError, match="STUDIO_DEMO_BRANDS"):
        Settings.from_env({"STUDIO_HOME": "/tmp/x", "STUDIO_DEMO_BRANDS": "maybe"})


def test_a_studio_with_brands_or_a_missing_folder_is_left_alone(services: Any, tmp_path: Path) -> None:
    from studio.services.brand_files import BrandSpec, SizePreset

    spec = BrandSpec(
        slug="own",
        name="Own",
        palette=("#ff0000",),
        style_template="{prompt}",
        size_presets=(SizePreset("square", "feed", 64, 64),),
        default_size="square",
    )
    services.brands.create_brand(SYSTEM, spec)
    started = first_start(services.users, services.brands, demo_brands=True)
    assert started.admin.created and started.demo_brands == ()
    assert [b.slug for b in services.brands.list_brands(SYSTEM)] == ["own"]


def test_a_missing_demo_folder_is_a_note_not_a_failure(services: Any, tmp_path: Path) -> None:
    started = first_start(services.users, services.brands, demo_brands=True, demo_dir=tmp_path / "none")
    assert started.admin.created and started.demo_brands == ()
    assert "is not a folder" in started.note
    assert services.brands.list_brands(SYSTEM) == []


def test_an_admin_restored_in_a_studio_with_people_gets_no_demo_brands(services: Any) -> None:
    services.users.add_user(SYSTEM, "mia", ["marketer"], "a-long-password")  # people, but no admin yet
    started = first_start(services.users, services.brands, demo_brands=True)
    assert started.admin.created and started.demo_brands == ()
    assert services.brands.list_brands(SYSTEM) == []
