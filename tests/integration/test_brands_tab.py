"""The Brands tab's table (LoRA and template counts) stays fresh: it is listed again after the tab's own saves
and whenever the tab is opened (changes made elsewhere, e.g. a training publish, show up). Real local server
built as ``app.py`` builds it, called as its browser page calls it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gradio_http import GradioSession
from helpers import DEMO_BRANDS, safetensors_bytes
from live_server import serve_ui

from studio.services.views import SYSTEM

PASSWORD = "a-long-password-1"


@pytest.fixture
def server(services: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    services.brands.sync(SYSTEM, DEMO_BRANDS)
    services.users.add_user(SYSTEM, "ada", ["admin"], PASSWORD)
    services.users.add_user(SYSTEM, "mia", ["marketer"], PASSWORD)
    services.brands.grant(SYSTEM, "lagoon", "mia")
    with serve_ui(services) as url:
        yield url


def _ids(config: dict[str, Any]) -> tuple[int, int]:
    """(the Brands tab's id, the id of its brands table)."""
    components = config["components"]
    tab = next(c["id"] for c in components if c["type"] == "tabitem" and c["props"].get("label") == "Brands")
    table = next(c["id"] for c in components if c["props"].get("label") == "Your brands")
    return tab, table


def _counts(data: list[Any]) -> dict[str, tuple[int, int]]:
    """slug -> (LoRAs, templates) from a listing's table output."""
    return {row[0]: (int(row[3]), int(row[4])) for row in data[0]["data"]}


def _config(server: str) -> dict[str, Any]:
    with GradioSession(server) as page:
        assert page.login("ada", PASSWORD).status_code == 200
        return page.config()


def test_the_table_is_listed_again_after_each_save_of_the_tab(server: str) -> None:
    config = _config(server)
    deps = config["dependencies"]
    _, table = _ids(config)
    by_name = {d.get("api_name"): d for d in deps}
    for saved in ("create_brand", "update_brand", "upload_lora", "create_template"):
        followers = [
            d
            for d in deps
            if d.get("trigger_after") == by_name[saved]["id"] and d.get("trigger_only_on_success")
        ]
        assert any(table in d["outputs"] for d in followers), f"{saved} does not list the brands again"


def test_opening_the_tab_shows_changes_made_elsewhere(services: Any, server: str, tmp_path: Path) -> None:
    config = _config(server)
    tab, table = _ids(config)
    on_select = [d for d in config["dependencies"] if [tab, "select"] in [list(t) for t in d["targets"]]]
    assert len(on_select) == 1 and table in on_select[0]["outputs"]
    assert on_select[0]["api_visibility"] == "private"

    with GradioSession(server) as ada, GradioSession(server) as mia:
        assert ada.login("ada", PASSWORD).status_code == 200
        assert mia.login("mia", PASSWORD).status_code == 200
        before = ada.call(on_select[0]["id"], [])
        assert before.ok, before.error
        counts = _counts(before.data)
        # a LoRA published elsewhere (as the Training tab's publish does, through BrandService.upload_lora)
        lora = tmp_path / "extra.safetensors"
        lora.write_bytes(safetensors_bytes())
        services.brands.upload_lora(SYSTEM, "lagoon", lora, name="lagoon-extra")
        after = ada.call(on_select[0]["id"], [])
        assert after.ok, after.error
        assert _counts(after.data)["lagoon"] == (counts["lagoon"][0] + 1, counts["lagoon"][1])
        assert _counts(after.data)["ember"] == counts["ember"]
        seen = mia.call(on_select[0]["id"], [])  # a marketer: the same fresh count, own brands only
        assert seen.ok, seen.error
        assert _counts(seen.data) == {"lagoon": _counts(after.data)["lagoon"]}
