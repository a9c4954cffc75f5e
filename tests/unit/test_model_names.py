"""Models are shown by name, never by a server path (issue 16, item 4)."""

from __future__ import annotations

from pathlib import Path

from studio.services.brand_models import model_name
from studio.services.gallery import shown_recipe


def test_a_local_folder_is_named_by_its_last_part(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "brand-v2"
    folder.mkdir(parents=True)
    assert model_name(str(folder)) == model_name(f"{folder}/") == "brand-v2"
    assert model_name("~/models/sd15") == model_name("./sd15") == model_name(r"C:\models\sd15") == "sd15"
    assert model_name("stabilityai/sd-turbo") == "stabilityai/sd-turbo"  # a hub repo id is a name
    assert model_name("embedded:toyworld") == "embedded:toyworld"
    assert model_name(None) == model_name("") == ""


def test_the_gallery_recipe_names_models_and_keeps_the_rest(tmp_path: Path) -> None:
    stored = {
        "base_model": "/srv/studio/models/acme-base",
        "base_model_hash": "ab" * 32,
        "controls": [{"controlnet": "/srv/studio/models/canny", "scale": 1.0}],
        "seed": 1,
        "steps": 2,
    }
    shown = shown_recipe(stored, seed=7)
    assert shown["base_model"] == "acme-base" and shown["controls"][0]["controlnet"] == "canny"
    assert (shown["seed"], shown["steps"], shown["base_model_hash"]) == (7, 2, "ab" * 32)
    assert "/srv/" not in str(shown)
    assert stored["base_model"] == "/srv/studio/models/acme-base"  # the stored recipe is untouched
