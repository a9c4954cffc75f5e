"""A size that names no preset may be ``WIDTHxHEIGHT`` (what a remix of an image outside the brand's presets
puts in the Generate form); anything else is still refused naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import snapshot

from studio.errors import ValidationError
from studio.services.generation import GenerateInput
from studio.services.views import Actor

MIA = Actor.user("mia")


def test_width_x_height_makes_that_size_and_other_names_are_refused(studio: Any) -> None:
    made = studio.generation.generate(
        MIA, GenerateInput(brand="acme", prompt="a red circle", size="40x24", steps=1, loras={"shine": 0})
    )
    image = made.images[0]
    assert (image.width, image.height) == (40, 24)
    assert (studio.gallery.remix(MIA, image.id).width, studio.gallery.remix(MIA, image.id).height) == (40, 24)
    before = snapshot(studio)
    for bad in ("poster", "40x", "x24", "40 by 24"):
        with pytest.raises(ValidationError, match=r"size: brand acme has no size .* or WIDTHxHEIGHT"):
            studio.generation.generate(MIA, GenerateInput(brand="acme", prompt="a red circle", size=bad))
    assert snapshot(studio) == before
