"""The Gallery tab's pure helpers: which image a grid click opens, and number formatting in comparisons."""

from __future__ import annotations

from studio.services.gallery_compare import shown, shown_number
from studio.ui.gallery_tab import clicked_id, page_summary


def test_a_click_opens_the_image_its_own_caption_names() -> None:
    page = [7, 6, 5]
    cell = {"image": {"path": "x.png"}, "caption": "#5 pending ⚠"}
    assert clicked_id(page, 0, cell) == 5  # the grid moved under the click: the caption decides
    assert clicked_id(page, 1, {"caption": None}) == 6  # no caption: the place on the page
    assert clicked_id(page, 1, None) == 6
    assert clicked_id(page, 9, None) is None and clicked_id([], 0, None) is None


def test_numbers_are_written_one_way() -> None:
    assert [shown_number(v) for v in (5, 5.0, 0.8, 0.800000011920929, 0.02876, 1e-05, 7.25)] == [
        "5",
        "5",
        "0.8",
        "0.8",
        "0.0288",
        "1e-05",
        "7.25",
    ]
    assert shown(None) == "" and shown(True) == "True" and shown("DPM++ 2M") == "DPM++ 2M"


def test_an_empty_page_says_what_to_do() -> None:
    assert "Clear the filters" in page_summary(1, 0, False) and "Generate" in page_summary(1, 0, False)
    assert "Previous page" in page_summary(3, 0, False)
    assert page_summary(2, 5, True) == "Page **2**: 5 image(s) · more on the next page"
