"""The brand's "put the prompt in the Content Credentials" setting (issue 21) lives in brand.toml
(``credentials_include_prompt``, top level): parsed and checked, written by export, applied by sync, and on
the Brands tab's admin form (loaded with the brand, saved with the form) over a real local server."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest
from gradio_http import GradioSession
from helpers import DEMO_BRANDS
from live_server import DEMO_PASSWORD as PASSWORD
from live_server import demo_server_fixture  # noqa: F401 (the demo_server fixture)

from studio.errors import ValidationError
from studio.services.brand_files import parse_brand_file, render_brand_toml
from studio.services.views import SYSTEM

CHECKBOX = "Put the prompt in the Content Credentials"
KEY = "credentials_include_prompt"


def _brand_folder(tmp_path: Path, line: str) -> Path:
    """A copy of the demo lagoon brand with ``line`` added at the top of its brand.toml."""
    folder = tmp_path / "lagoon"
    shutil.copytree(DEMO_BRANDS / "lagoon", folder)
    toml = folder / "brand.toml"
    toml.write_text(f"{line}\n{toml.read_text()}")
    return folder


def test_brand_toml_reads_writes_and_checks_the_setting(tmp_path: Path) -> None:
    spec = parse_brand_file(_brand_folder(tmp_path, f"{KEY} = true") / "brand.toml")
    assert spec.credentials_include_prompt is True
    rendered = render_brand_toml(spec)
    assert tomllib.loads(rendered)[KEY] is True
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / "brand.toml").write_text(rendered)
    assert parse_brand_file(tmp_path / "again" / "brand.toml") == spec  # round trip
    off = parse_brand_file(DEMO_BRANDS / "lagoon" / "brand.toml")
    assert off.credentials_include_prompt is False  # absent: off (prompts stay private)
    assert f"{KEY} = false" in render_brand_toml(off)  # written either way, so a reader sees it
    bad = _brand_folder(tmp_path / "bad", f'{KEY} = "yes"') / "brand.toml"
    with pytest.raises(ValidationError) as error:
        parse_brand_file(bad)
    assert f"brand.toml: {KEY}" in str(error.value) and "true or false" in str(error.value)


def test_sync_and_export_round_trip_the_setting(services: Any, tmp_path: Path) -> None:
    services.brands.sync(SYSTEM, DEMO_BRANDS)
    assert services.credentials.include_prompt(SYSTEM, "lagoon") is False
    report = services.brands.sync(SYSTEM, _brand_folder(tmp_path / "in", f"{KEY} = true"))
    assert [r.status for r in report.results] == ["updated"]
    assert services.credentials.include_prompt(SYSTEM, "lagoon") is True
    exported = services.brands.export_brand(SYSTEM, "lagoon", tmp_path / "out") / "brand.toml"
    assert tomllib.loads(exported.read_text())[KEY] is True
    services.credentials.set_include_prompt(SYSTEM, "lagoon", False)  # `studio credentials include-prompt`
    assert services.brands.sync(SYSTEM, exported).results[0].status == "updated"
    assert services.credentials.include_prompt(SYSTEM, "lagoon") is True  # the file says so
    assert services.brands.sync(SYSTEM, exported).results[0].status == "unchanged"


def test_the_brands_tab_form_loads_and_saves_the_setting(services: Any, demo_server: str) -> None:  # noqa: F811
    with GradioSession(demo_server) as ada:
        assert ada.login("ada", PASSWORD).status_code == 200
        config = ada.config()
        components = {c["id"]: c for c in config["components"]}
        (box,) = [i for i, c in components.items() if c["props"].get("label") == CHECKBOX]
        update = next(d for d in config["dependencies"] if d.get("api_name") == "update_brand")
        load = next(d for d in config["dependencies"] if d["outputs"] == update["inputs"])  # load_form
        loaded = ada.call(load["id"], ["lagoon"])
        assert loaded.ok, loaded.error
        values = dict(zip(update["inputs"], loaded.data, strict=True))
        assert values[box] is False
        labels = {components[i]["props"]["label"]: v for i, v in values.items()}
        saved = ada.call_named("update_brand", labels | {CHECKBOX: True})
        assert saved.ok, saved.error
        assert services.credentials.include_prompt(SYSTEM, "lagoon") is True
        again = ada.call(load["id"], ["lagoon"])
        assert dict(zip(update["inputs"], again.data, strict=True))[box] is True
