"""The real `studio` CLI: the issue's done-criterion in a subprocess, bad input through typer's CliRunner."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import files_under, snapshot
from typer.testing import CliRunner

from studio.cli import app
from studio.config import Settings

REPO = Path(__file__).resolve().parents[2]
STUDIO = [sys.executable, "-m", "studio.cli"]


def run(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        STUDIO + args, cwd=REPO, env=env, input=stdin, capture_output=True, text=True, timeout=120
    )


def test_upgrade_then_sync_then_list_on_an_empty_folder(cli_env: dict[str, str], studio_home: Path) -> None:
    upgraded = run(["db", "upgrade"], cli_env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "database upgraded" in upgraded.stdout and (studio_home / "studio.db").is_file()

    first = run(["brands", "sync", "brands/"], cli_env)
    assert first.returncode == 0, first.stderr
    assert "created   ember" in first.stdout and "created   lagoon" in first.stdout
    assert "not found" not in first.stdout  # the demo brands ship their trained LoRA files

    listed = run(["brands", "list", "--json"], cli_env)
    assert listed.returncode == 0, listed.stderr
    brands = json.loads(listed.stdout)
    assert [b["slug"] for b in brands] == ["ember", "lagoon"]
    assert brands[1]["palette"] == ["#008080", "#f58719", "#f5dc28"]

    second = run(["brands", "sync", "brands/"], cli_env)
    assert second.returncode == 0
    assert "unchanged ember" in second.stdout and "unchanged lagoon" in second.stdout
    assert json.loads(run(["brands", "list", "--json"], cli_env).stdout) == brands


def test_light_commands_do_not_import_torch_or_gradio(cli_env: dict[str, str]) -> None:
    code = (
        "import sys\n"
        "sys.argv = ['studio', 'users', 'list']\n"
        "from studio.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('torch', 'gradio', 'diffusers', 'transformers') if m in sys.modules]\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=cli_env, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.splitlines()[-1] == "HEAVY=", done.stdout + done.stderr


@pytest.fixture
def runner(studio_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    for key in ("STUDIO_DATABASE_URL", "STUDIO_ADMIN_PASSWORD", "STUDIO_PORT", "STUDIO_DEVICE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("STUDIO_HOME", str(studio_home))
    yield CliRunner()


@pytest.fixture
def ready(runner: CliRunner, services) -> CliRunner:  # noqa: ANN001
    """Demo brands synced and a marketer 'mia' (password 'correct horse')."""
    assert runner.invoke(app, ["brands", "sync", str(REPO / "brands")]).exit_code == 0
    result = runner.invoke(
        app, ["users", "add", "mia", "--role", "marketer", "--password-stdin"], "correct horse\n"
    )
    assert result.exit_code == 0, result.output
    return runner


def bad_brand(tmp_path: Path, edit: str) -> Path:
    folder = tmp_path / "bad-brands"
    shutil.copytree(REPO / "brands", folder)
    path = folder / "lagoon" / "brand.toml"
    text = path.read_text()
    if edit == "malformed":
        text += "\n[defaults\n"
    elif edit == "unknown key":
        text = "mood = 'calm'\n" + text
    elif edit == "bad colour":
        text = text.replace('"orange"', '"#ff00zz"')
    elif edit == "no prompt":
        text = text.replace("{prompt}, lagoonstyle", "lagoonstyle")
    elif edit == "duplicate slug":
        text = 'slug = "ember"\n' + text
    path.write_text(text)
    return folder


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        ("malformed", "malformed TOML"),
        ("unknown key", "lagoon/brand.toml: mood: unknown key"),
        ("bad colour", "lagoon/brand.toml: palette[1]: '#ff00zz' is not a colour"),
        ("no prompt", "lagoon/brand.toml: style_template: must contain {prompt}"),
        ("duplicate slug", "duplicate slug 'ember'"),
    ],
)
def test_bad_brand_files_exit_non_zero_and_change_nothing(
    ready: CliRunner,
    services,
    tmp_path: Path,
    edit: str,
    expected: str,  # noqa: ANN001
) -> None:
    folder = bad_brand(tmp_path, edit)
    before, files_before = snapshot(services), files_under(services.settings.home)
    result = ready.invoke(app, ["brands", "sync", str(folder)])
    assert result.exit_code == 1
    assert expected in result.stderr and "lagoon/brand.toml" in result.stderr
    assert "Traceback" not in result.output
    assert snapshot(services) == before
    assert files_under(services.settings.home) == files_before


@pytest.mark.parametrize(
    ("args", "stdin", "expected"),
    [
        (["users", "add", "zed", "--role", "wizard"], None, "unknown role 'wizard'"),
        (["users", "add", "mia", "--role", "marketer"], None, "already exists"),
        (["users", "add", "zed", "--role", "marketer", "--password-stdin"], "short\n", "password"),
        (["users", "set-roles", "mia", "--role", "boss"], None, "unknown role 'boss'"),
        (["users", "disable", "ghost"], None, "user 'ghost' not found"),
        (["brands", "grant", "nope", "mia"], None, "brand 'nope' not found"),
        (["brands", "grant", "lagoon", "ghost"], None, "user 'ghost' not found"),
        (["brands", "export", "nope"], None, "brand 'nope' not found"),
    ],
    ids=["unknown-role", "duplicate-user", "short-password", "set-unknown-role", "unknown-user",
         "grant-no-brand", "grant-no-user", "export-no-brand"],
)  # fmt: skip
def test_bad_commands_exit_non_zero_and_change_nothing(
    ready: CliRunner,
    services,
    args: list[str],
    stdin: str | None,
    expected: str,  # noqa: ANN001
) -> None:
    before = snapshot(services)
    result = ready.invoke(app, args, stdin)
    assert result.exit_code == 1, result.output
    assert expected in result.stderr
    assert snapshot(services) == before


def test_user_commands(ready: CliRunner, services) -> None:  # noqa: ANN001
    added = ready.invoke(app, ["users", "add", "rex", "-r", "reviewer", "-r", "marketer"])
    assert added.exit_code == 0
    password = added.stdout.split("(shown once): ")[1].strip()
    assert services.users.check_login("rex", password)
    assert ready.invoke(app, ["users", "set-roles", "rex", "--role", "reviewer"]).exit_code == 0
    assert ready.invoke(app, ["brands", "grant", "lagoon", "rex"]).exit_code == 0
    users = {u["username"]: u for u in json.loads(ready.invoke(app, ["users", "list", "--json"]).stdout)}
    assert users["rex"]["roles"] == ["reviewer"] and users["rex"]["brands"] == ["lagoon"]
    assert "password_hash" not in users["rex"]
    assert ready.invoke(app, ["users", "disable", "rex"]).exit_code == 0
    assert not services.users.check_login("rex", password)
    reset = ready.invoke(app, ["users", "reset-password", "mia", "--password-stdin"], "brand new pass\n")
    assert reset.exit_code == 0 and services.users.check_login("mia", "brand new pass")


def test_export_command_writes_the_brand_folder(ready: CliRunner, tmp_path: Path) -> None:
    result = ready.invoke(app, ["brands", "export", "ember", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "ember" / "brand.toml").is_file()
    assert (tmp_path / "out" / "ember" / "templates" / "left-square.png").is_file()


def test_config_prints_resolved_values_but_never_the_admin_password(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_PORT", "9123")
    monkeypatch.setenv("STUDIO_ADMIN_PASSWORD", "super secret pw")
    result = runner.invoke(app, ["config", "--json"])
    assert result.exit_code == 0
    values = json.loads(result.stdout)
    assert values["port"] == 9123 and values["admin_password"] == "(set)"
    assert "super secret pw" not in result.output
    assert values["database_url"] == Settings.from_env().database_url
    monkeypatch.setenv("STUDIO_DEVICE", "tpu")
    bad = runner.invoke(app, ["config"])
    assert bad.exit_code == 1 and "STUDIO_DEVICE" in bad.stderr


def test_models_list_answers_without_a_traceback(runner: CliRunner) -> None:
    result = runner.invoke(app, ["models", "list", "--json"])
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        assert json.loads(result.stdout)["base_model"] == "embedded:toyworld"
    else:
        assert result.exit_code == 1 and "toy-world model is not available" in result.stderr
