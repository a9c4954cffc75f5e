"""Names shared by the review tests (the fixtures live in this folder's conftest.py)."""

from __future__ import annotations

from typing import Any

from studio.services.generation import GenerateInput
from studio.services.views import Actor

PASSWORD = "correct horse"
MIA, MAX, REX, RITA, OLGA = (Actor.user(n) for n in ("mia", "max", "rex", "rita", "olga"))


def generate_images(
    studio: Any, actor: Actor = MIA, prompt: str = "a red circle", count: int = 1, **kwargs: Any
) -> list[int]:
    """Generate images through the real service (LoRA off unless asked); returns their ids."""
    kwargs.setdefault("loras", {"shine": 0})
    request = GenerateInput(brand="acme", prompt=prompt, batch_size=count, **kwargs)
    return [image.id for image in studio.generation.generate(actor, request).images]
