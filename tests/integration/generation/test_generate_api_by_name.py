"""The API by name (issue 17 item 1), through ``gradio_client`` against a real local server.

``/generate_api`` takes keyword arguments: LoRAs as ``{"name": weight}`` (0 turns one off), templates by name,
anything left out is the brand's default (the CLI's rule). ``/brands_api``, ``/remix_api`` and
``/regenerate_api`` list brands, give an image's recipe as those arguments, and make an image again. The
README's example runs as written against the demo brands (the text below is the README's, with this
server's address and password, read from README.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from live_server import DEMO_PASSWORD, demo_server_fixture  # noqa: F401 (the demo_server fixture)

from studio.engine.recipe import read_recipe
from studio.services.generation import GenerateInput
from studio.services.views import Actor

PASSWORD = "correct horse"
README = Path(__file__).resolve().parents[3] / "README.md"


def readme_example() -> str:
    """The README's API example (between its ``api-example`` markers), as the README shows it."""
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- api-example -->", 1)[1].split("<!-- /api-example -->", 1)[0]
    return block.split("```python\n", 1)[1].rsplit("```", 1)[0]


def _client(url: str, user: str = "mia", password: str = PASSWORD) -> Any:
    from gradio_client import Client

    return Client(url, auth=(user, password), verbose=False)


def test_lora_weight_0_gives_the_no_lora_pixels_and_omitted_numbers_are_the_brands(
    studio: Any, server: str
) -> None:
    client = _client(server)
    off = client.predict(
        brand="acme", prompt="a red circle", seed=3, loras={"shine": 0}, api_name="/generate_api"
    )
    default = client.predict(brand="acme", prompt="a red circle", seed=3, api_name="/generate_api")
    half = client.predict(
        brand="acme", prompt="a red circle", seed=3, loras={"shine": 0.4}, api_name="/generate_api"
    )
    without = studio.generation.get_image(Actor.user("mia"), off["images"][0]["id"])
    assert read_recipe(without.path).loras == ()  # weight 0: the LoRA is not used at all
    assert off["prompt"] == "a red circle, acme style"  # nor its trigger word
    hashes = [r["images"][0]["pixel_sha256"] for r in (off, default, half)]
    assert len(set(hashes)) == 3  # off, the default weight 0.8, and 0.4 all differ
    plain = studio.generation.generate(  # the no-LoRA pixels, made by the service directly
        Actor.user("mia"), GenerateInput(brand="acme", prompt="a red circle", seed=3, loras={"shine": 0})
    )
    assert plain.images[0].pixel_sha256 == hashes[0]
    weights = {e.name: e.weight for e in read_recipe(studio.generation.get_image(
        Actor.user("mia"), half["images"][0]["id"]).path).loras}  # fmt: skip
    assert weights == {"shine": 0.4}

    recipe = read_recipe(studio.generation.get_image(Actor.user("mia"), default["images"][0]["id"]).path)
    # the brand's cfg 5, 3 steps, Euler and 'square' (32x32); the old /generate took 7.0 and 20 steps
    assert (default["cfg"], recipe.guidance_scale, recipe.steps, recipe.sampler) == (5.0, 5.0, 3, "Euler")
    assert (recipe.width, recipe.height) == (32, 32)
    assert {e.name: e.weight for e in recipe.loras} == {"shine": 0.8}


def test_unknown_lora_and_bad_arguments_get_clear_errors(studio: Any, server: str) -> None:
    client = _client(server)
    with pytest.raises(Exception, match=r"brand acme has no LoRA 'nope' \(it has: shine\)"):
        client.predict(brand="acme", prompt="a cat", loras={"nope": 0.5}, api_name="/generate_api")
    with pytest.raises(Exception, match="templates"):
        client.predict(brand="acme", prompt="a cat", templates="frame", api_name="/generate_api")
    with pytest.raises(Exception, match="brand 'acme' not found"):
        _client(server, "olga").predict(brand="acme", prompt="a cat", api_name="/generate_api")
    assert studio.gallery is not None


def test_brands_remix_and_regenerate_by_name(studio: Any, server: str) -> None:
    client = _client(server)
    (acme,) = client.predict(api_name="/brands_api")
    assert (acme["slug"], acme["defaults"]["cfg"], acme["defaults"]["steps"]) == ("acme", 5.0, 3)
    assert acme["loras"][0]["name"] == "shine" and acme["loras"][0]["default_weight"] == 0.8
    assert acme["templates"] == ["frame"] and [s["name"] for s in acme["sizes"]] == ["square", "wide"]

    made = client.predict(
        brand="acme",
        prompt="a blue square",
        seed=9,
        steps=2,
        size="wide",
        loras={"shine": 0.3},
        templates=["frame"],
        api_name="/generate_api",
    )
    image = made["images"][0]
    recipe = client.predict(image_id=image["id"], api_name="/remix_api")
    assert recipe["loras"] == {"shine": 0.3} and recipe["templates"] == ["frame"] and recipe["seed"] == 9
    remade = client.predict(**recipe, api_name="/generate_api")
    again = client.predict(image_id=image["id"], api_name="/regenerate_api")
    assert remade["images"][0]["pixel_sha256"] == image["pixel_sha256"]
    assert again["images"][0]["pixel_sha256"] == image["pixel_sha256"]
    assert image["url"].endswith(f"image-{image['id']}.png")
    with pytest.raises(Exception, match="not found"):
        _client(server, "olga").predict(image_id=image["id"], api_name="/remix_api")


def test_the_readme_example_runs_as_written(
    demo_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code = (
        readme_example().replace("http://127.0.0.1:7860", demo_server).replace("your-password", DEMO_PASSWORD)
    )
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - the README's own text
    (saved,) = tmp_path.glob("lagoon-*.png")
    assert read_recipe(saved).steps == 4
