"""A size that names no preset may be ``WIDTHxHEIGHT`` when an admin allows custom sizes for the brand (what
a remix of an image outside the brand's presets puts in the Generate form); anything else is still refused
naming the field. Without that permission only the presets, and the sizes of the brand's images the user may
see (a remix of one), are accepted."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import snapshot

from studio.errors import ValidationError
from studio.services.generation import GenerateInput
from studio.services.views import SYSTEM, Actor

MIA = Actor.user("mia")


def test_width_x_height_makes_that_size_and_other_names_are_refused(studio: Any) -> None:
    studio.brands.set_custom_sizes(SYSTEM, "acme", True)
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

    studio.brands.set_custom_sizes(SYSTEM, "acme", False)  # the image's own size stays usable (a remix)
    again = studio.generation.generate(MIA, studio.gallery.remix(MIA, image.id))
    assert (again.images[0].width, again.images[0].height) == (40, 24)
    with pytest.raises(ValidationError, match="size: 48x48 is not a size of brand acme"):
        studio.generation.generate(MIA, GenerateInput(brand="acme", prompt="a red circle", size="48x48"))
