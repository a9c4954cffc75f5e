"""The Gallery's Remix against a real local server (built as ``app.py`` builds it), called the way the browser
page calls it: a marketer generates an image with a non-default recipe, opens it in the Gallery, clicks Remix,
and gets the Generate tab selected and its form filled with that recipe. The brand's change events that
follow in the browser keep the remix's values (until the user picks a brand); the form, sent back to
Generate, makes the same pixels.
"""

from __future__ import annotations

from typing import Any

from gradio_http import GradioSession, Outcome
from live_server import server  # noqa: F401 (the in-process UI server fixture)

from studio.services.views import Actor

PASSWORD = "correct horse"
RECIPE = {
    "Brand": "acme",
    "Prompt": "a blue square remixed",
    "Negative prompt": "smudge",
    "CFG scale": 6.5,
    "Steps": 2,
    "Sampler": "DPM++ 2M",  # the brand's defaults: CFG 5, 3 steps, Euler, square, shine at 0.8
    "Size": "wide",
    "Images": 1,
    "Seed": "4242",
    "Layout templates": ["frame"],
    "LoRA 1": 0.35,
}


def _named(config: dict[str, Any], api_name: str) -> dict[str, Any]:
    return next(d for d in config["dependencies"] if d.get("api_name") == api_name)


def _values(config: dict[str, Any], dep: dict[str, Any], outcome: Outcome) -> dict[str, Any]:
    """An event's outputs by component label (updates reduced to what they set: value, or selected tab)."""
    assert outcome.ok, outcome.error
    components = {c["id"]: c for c in config["components"]}
    found: dict[str, Any] = {}
    for cid, value in zip(dep["outputs"], outcome.data or [], strict=True):
        component = components[cid]
        key = component["props"].get("label") or component["type"]
        if isinstance(value, dict) and value.get("__type__") == "update":
            if "selected" in value:
                found[key] = value["selected"]
            elif "value" in value:
                found[key] = value["value"]
            if "label" in value and "value" in value:  # LoRA sliders are relabelled with the adapter name
                found[value["label"]] = value["value"]
            continue
        found.setdefault(key, value)
    return found


def _brand_input(config: dict[str, Any], changed_dep: dict[str, Any]) -> dict[str, Any]:
    """The event the Generate brand picker fires when the user picks a brand themselves."""
    brand_id = changed_dep["inputs"][0]
    return next(d for d in config["dependencies"] if [brand_id, "input"] in d["targets"])


def _generate(browser: GradioSession, config: dict[str, Any], form: dict[str, Any]) -> int:
    outcome = browser.call_named("generate", form)
    assert outcome.ok, outcome.error
    return outcome.data[2]["generations"][0]["images"][0]["id"]


def test_remix_opens_generate_filled_with_the_recipe(studio: Any, server: str) -> None:  # noqa: F811
    with GradioSession(server) as mia:
        assert mia.login("mia", PASSWORD).status_code == 200
        config = mia.config()
        assert mia.call_named("brand_changed", {"Brand": "acme"}).ok  # the page does this at login
        image_id = _generate(mia, config, RECIPE)
        original = studio.generation.get_image(Actor.user("mia"), image_id)
        assert (original.width, original.height, original.seed) == (48, 32, 4242)

        listing = mia.call_named("list_page", {"Brand": "acme"})
        assert listing.ok and listing.data[3]["choices"] == [[f"#{image_id} pending", image_id]], listing
        opened = mia.call_named("open_image", {}, event_data={"index": 0, "value": None, "selected": True})
        assert opened.ok, opened.error

        remix_dep = _named(config, "make_remix")
        form = _values(config, remix_dep, mia.call_named("make_remix", {}))
        assert form["tabs"] == "Generate"
        assert {key: form[key] for key in RECIPE if key != "LoRA 1"} == {
            key: value for key, value in RECIPE.items() if key != "LoRA 1"
        }
        assert form["LoRA shine (shinystyle)"] == 0.35
        assert f'"seed": {original.seed}' in form["Remix: the Generate form's input"]

        # the browser then fires the brand's change event (maybe more than once): the remix's values win
        changed_dep = _named(config, "brand_changed")
        for _ in range(2):
            after = _values(config, changed_dep, mia.call_named("brand_changed", {"Brand": "acme"}))
            assert (after["CFG scale"], after["Steps"], after["Sampler"], after["Size"]) == (
                6.5,
                2,
                "DPM++ 2M",
                "wide",
            )
            assert after["Layout templates"] == ["frame"] and after["LoRA shine (shinystyle)"] == 0.35
        # until the user picks a brand: then the brand's defaults again
        picked = _brand_input(config, changed_dep)
        assert mia.call(picked["id"], [], queued=False).ok
        defaults = _values(config, changed_dep, mia.call_named("brand_changed", {"Brand": "acme"}))
        assert (defaults["CFG scale"], defaults["Steps"], defaults["Sampler"], defaults["Size"]) == (
            5.0,
            3,
            "Euler",
            "square",
        )
        assert defaults["Layout templates"] == [] and defaults["LoRA shine (shinystyle)"] == 0.8

        # the filled form, sent to Generate, makes the same image again
        again = _generate(mia, config, {**form, "LoRA 1": form["LoRA shine (shinystyle)"]})
        assert again != image_id
        assert studio.generation.get_image(Actor.user("mia"), again).pixel_sha256 == original.pixel_sha256

    with GradioSession(server) as rex:  # a reviewer of the brand: the recipe to read, no Generate tab
        assert rex.login("rex", PASSWORD).status_code == 200
        assert rex.call_named("list_page", {"Brand": "acme"}).ok
        assert rex.call_named("open_image", {}, event_data={"index": 0, "value": None, "selected": True}).ok
        shown = _values(config, remix_dep, rex.call_named("make_remix", {}))
        assert '"prompt": "a blue square remixed"' in shown["Remix: the Generate form's input"]
        assert "tabs" not in shown and "Prompt" not in shown
