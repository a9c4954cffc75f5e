"""What the Review and Gallery tabs show of images made by the real service on a real SQLite file: the
missed colours of an image merged (also those an older score stored), its brand's palette, and a comparison
whose rows differ only when the values shown differ, rendered as a table that fits the page."""

from __future__ import annotations

import json
import re
from typing import Any

from review_support import MIA, REX
from sqlalchemy import text

from studio.ui.gallery_tab import comparison_html


def _set_recipe(studio: Any, image_id: int, **changes: Any) -> None:
    """Change the stored recipe of ``image_id``'s generation, as an older version or a client wrote it."""
    with studio.engine.begin() as conn:
        generation_id, recipe = conn.execute(
            text(
                "select g.id, g.recipe from generations g join images i on i.generation_id = g.id "
                "where i.id = :id"
            ),
            {"id": image_id},
        ).one()
        recipe = json.loads(recipe) if isinstance(recipe, str) else recipe
        for key, value in changes.items():
            if key == "lora_weight":
                recipe["loras"][0]["weight"] = value
            else:
                recipe[key] = value
        conn.execute(
            text("update generations set recipe = :recipe where id = :id"),
            {"recipe": json.dumps(recipe), "id": generation_id},
        )


def test_compare_rows_differ_only_when_the_shown_values_do(studio: Any, make_images: Any) -> None:
    (first,) = make_images(MIA, loras={"shine": 0.8})
    (second,) = make_images(MIA, loras={"shine": 0.8})
    # the same settings written two ways: CFG as an int and a float, a weight that went through float32;
    # palette scores that both read 0.00
    _set_recipe(studio, first, guidance_scale=5, lora_weight=0.800000011920929)
    _set_recipe(studio, second, guidance_scale=5.0, lora_weight=0.8)
    with studio.engine.begin() as conn:
        conn.execute(text("update images set palette_score = 0.0004 where id = :id"), {"id": first})
        conn.execute(text("update images set palette_score = 0.0 where id = :id"), {"id": second})

    comparison = studio.gallery.compare(REX, [first, second])
    rows = {row.key: row for row in comparison.rows}
    assert rows["guidance_scale"].values == ("5", "5") and not rows["guidance_scale"].differs
    assert rows["loras[0].weight"].values == ("0.8", "0.8") and not rows["loras[0].weight"].differs
    assert rows["palette_score"].values == ("0.00", "0.00") and not rows["palette_score"].differs
    assert [row.key for row in comparison.differences] == ["seed"]
    assert len(comparison.shared) == len(comparison.rows) - 1

    shown = comparison_html(comparison)
    table = shown.split("</table>")[0]
    assert re.findall(r"<tr[ >]", table)[1:] and len(re.findall(r"<tr[ >]", table)) == 2  # the head, seed
    assert ">seed<" in table and "palette_score" not in table and "guidance_scale" not in table
    assert "table-layout:fixed" in table.replace(" ", "") and "width:100%" in table.replace(" ", "")
    assert "<b>1</b> field(s) differ" in shown and f"{len(comparison.shared)} field(s) are the same" in shown
    assert shown.count("<details>") == 1, "the shared fields are folded away"


def test_a_comparison_says_when_an_image_was_not_scored(studio: Any, make_images: Any) -> None:
    first, second = make_images(MIA, count=2)
    with studio.engine.begin() as conn:
        conn.execute(text("update images set palette_score = null where id = :id"), {"id": first})
    rows = {row.key: row for row in studio.gallery.compare(REX, [first, second]).rows}
    assert rows["palette_score"].values[0] == "not scored" and rows["palette_score"].differs


def test_details_merge_near_identical_missed_colours_and_carry_the_brand_palette(
    studio: Any, make_images: Any
) -> None:
    (image_id,) = make_images(MIA)
    stored = [  # as scores stored them before near-identical colours were merged
        {"colour": "#0361b3", "share": 0.41, "nearest": "#ffffff", "delta_e": 40.0},
        {"colour": "#0160ad", "share": 0.23, "nearest": "#ffffff", "delta_e": 41.0},
        {"colour": "#015998", "share": 0.09, "nearest": "#ffffff", "delta_e": 42.0},
        {"colour": "#79712b", "share": 0.08, "nearest": "#ff0000", "delta_e": 45.0},
    ]
    with studio.engine.begin() as conn:
        conn.execute(
            text("update images set palette_flag = 1, palette_score = 0.1, palette_misses = :m where id=:i"),
            {"m": json.dumps(stored), "i": image_id},
        )
    detail = studio.gallery.detail(REX, image_id)
    assert len(detail.item.missed_colours) == 2 and detail.item.missed_colours[1] == "#79712b"
    assert detail.item.palette_misses[0]["share"] == 0.73
    assert detail.palette == ("#ff0000", "#ffffff")
    queued = {item.id: item for item in studio.review.queue(REX)}
    assert len(queued[image_id].palette_misses) == 4, "a listing shows what is stored (merged when opened)"
