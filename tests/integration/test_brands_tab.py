"""The Brands tab's table (LoRA and template counts) stays fresh: it is listed again after the tab's own saves
and whenever the tab is opened (changes made elsewhere, e.g. a training publish, show up). Real local server
built as ``app.py`` builds it, called as its browser page calls it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gradio_http import GradioSession
from helpers import safetensors_bytes
from live_server import DEMO_PASSWORD as PASSWORD
from live_server import demo_server_fixture  # noqa: F401 (the demo_server fixture)

from studio.services.views import SYSTEM


def _ids(config: dict[str, Any]) -> tuple[int, int]:
    """(the Brands tab's id, the id of its brands table)."""
    components = config["components"]
    tab = next(c["id"] for c in components if c["type"] == "tabitem" and c["props"].get("label") == "Brands")
    table = next(c["id"] for c in components if c["props"].get("label") == "Your brands")
    return tab, table


def _counts(data: list[Any]) -> dict[str, tuple[int, int]]:
    """slug -> (LoRAs, templates) from a listing's table output."""
    return {row[0]: (int(row[3]), int(row[4])) for row in data[0]["data"]}


def _config(demo_server: str) -> dict[str, Any]:
    with GradioSession(demo_server) as page:
        assert page.login("ada", PASSWORD).status_code == 200
        return page.config()


def test_the_table_is_listed_again_after_each_save_of_the_tab(demo_server: str) -> None:
    config = _config(demo_server)
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


def test_opening_the_tab_shows_changes_made_elsewhere(
    services: Any, demo_server: str, tmp_path: Path
) -> None:
    config = _config(demo_server)
    tab, table = _ids(config)
    on_select = [
        d
        for d in config["dependencies"]
        if [tab, "select"] in [list(t) for t in d["targets"]] and table in d["outputs"]
    ]  # (the other select event fills the admins' member picker)
    assert len(on_select) == 1
    assert on_select[0]["api_visibility"] == "private"

    with GradioSession(demo_server) as ada, GradioSession(demo_server) as mia:
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
