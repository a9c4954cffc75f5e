"""The HSV colour naming of the toy-world evaluation (issue 18): drift is named, not snapped back."""

from __future__ import annotations

import pytest

from studio.toyworld import world
from studio.toyworld.classify import classify
from studio.toyworld.colour_names import hsv, hsv_name


def test_the_issues_drifted_teal_is_blue() -> None:
    assert hsv_name((9, 106, 166)) == "blue"


def test_the_issues_drifted_gray_is_violet() -> None:
    assert hsv_name((119, 96, 169)) == "purple"


@pytest.mark.parametrize("name", list(world.FG_COLOURS) + list(world.BACKGROUNDS))
def test_world_colours_name_themselves(name: str) -> None:
    rgb = {**world.FG_COLOURS, **world.BACKGROUNDS}[name]
    assert hsv_name(rgb) == name


@pytest.mark.parametrize(
    ("rgb", "name"),
    [
        ((0, 121, 132), "teal"),  # lagoon's teal at CFG 1 (README)
        ((15, 83, 188), "blue"),  # the same background at CFG 5
        ((0, 170, 255), "teal"),  # hue 200.0: teal's band is closed
        ((0, 168, 255), "blue"),  # hue 200.5
        ((120, 128, 128), "gray"),  # saturation 0.06
        ((90, 128, 128), "teal"),  # saturation 0.30
        ((245, 160, 25), "orange"),  # hue 36.8
        ((245, 175, 25), "yellow"),  # hue 40.9
        ((240, 60, 200), "magenta"),  # no world colour
        ((20, 30, 40), "black"),  # value 0.16
        ((210, 210, 215), "white"),
        ((160, 160, 165), "gray"),
    ],
)
def test_band_edges(rgb: tuple[int, int, int], name: str) -> None:
    assert hsv_name(rgb) == name


def test_band_edge_colours_have_the_hues_the_table_says() -> None:
    assert hsv((0, 170, 255))[0] == pytest.approx(200.0)
    assert hsv((245, 160, 25))[0] < 40.0 < hsv((245, 175, 25))[0]
    assert hsv((90, 128, 128))[1] >= 0.25 > hsv((120, 128, 128))[1]


def test_the_classifier_names_drawn_scenes_by_hsv_as_drawn() -> None:
    """Every drawn held-out combination reads back right with the HSV naming too."""
    for i, combo in enumerate(world.held_out_combos()):
        scene = world.Scene(*combo, size=world.SIZES[i % 3])
        reading = classify(world.render(scene))
        assert (reading.background_hsv, reading.colour_hsv) == (combo[2], combo[0]), combo
