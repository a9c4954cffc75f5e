"""The named Gradio endpoint ``/generate`` through ``gradio_client`` with a login, on a real local server.

The app is built in-process exactly as ``app.py`` builds it (``build_ui`` + ``launch_options``) and launched
on 127.0.0.1 with ``prevent_thread_lock=True``; the services share the module's tiny engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import snapshot
from PIL import Image

from studio.engine.recipe import read_recipe

PASSWORD = "correct horse"


def _call(url: str, user: str, brand: str) -> Any:
    from gradio_client import Client

    client = Client(url, auth=(user, PASSWORD), verbose=False)
    # brand, prompt, negative, cfg, steps, sampler, size, batch, seed, templates, 4 LoRA sliders
    return client.predict(
        brand,
        "a red circle",
        "",
        5,
        2,
        "Euler",
        "square",
        1,
        "11",
        [],
        1.0,
        1.0,
        1.0,
        1.0,
        api_name="/generate",
    )


def test_marketer_member_generates_and_non_member_is_refused(studio: Any, server: str) -> None:
    gallery, final_prompt, details = _call(server, "mia", "acme")
    assert "shinystyle, a red circle, acme style" in final_prompt
    image_id = details["generations"][0]["images"][0]["id"]
    path = Path(gallery[0]["image"] if isinstance(gallery[0]["image"], str) else gallery[0]["image"]["path"])
    with Image.open(path) as downloaded:
        assert downloaded.format == "PNG" and downloaded.size == (32, 32)
    assert read_recipe(path).seed == 11  # the served file keeps its recipe
    assert studio.generation.get_image(studio_actor("mia"), image_id).seed == 11

    before = _generation_rows(studio)
    with pytest.raises(Exception, match="brand 'acme' not found"):
        _call(server, "olga", "acme")
    with pytest.raises(Exception, match="marketer"):
        _call(server, "rex", "acme")
    assert _generation_rows(studio) == before  # logins change users/audit rows; generations stay as they were


def _generation_rows(studio: Any) -> dict[str, Any]:
    tables = ("generations", "generation_loras", "generation_templates", "images")
    return {name: rows for name, rows in snapshot(studio).items() if name in tables}


def studio_actor(name: str) -> Any:
    from studio.services.views import Actor

    return Actor.user(name)
