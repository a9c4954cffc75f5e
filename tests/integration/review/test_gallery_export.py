"""Gallery filters, pagination, visibility, compare, remix and export, on images made by the real service."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import files_under
from PIL import Image
from review_support import MAX, MIA, OLGA, REX, RITA, generate_images
from sqlalchemy import text

from studio.engine.recipe import read_parameters, read_recipe
from studio.errors import NotFoundError, ValidationError
from studio.services.gallery import GalleryFilter
from studio.services.views import SYSTEM


def _ids(page: Any) -> list[int]:
    return [item.id for item in page.items]


@pytest.fixture(scope="module")
def studio(module_studio: Any) -> Any:
    """One studio for this module: its tests read what ``stocked`` made (remix, last, adds one image)."""
    return module_studio


@pytest.fixture(scope="module")
def stocked(studio: Any) -> dict[str, list[int]]:
    """mia: 3 plain "red circle" images and 1 with the LoRA and the template; max: 2 "blue square" ones.
    One of mia's is approved, one rejected; one of max's is approved."""
    plain = generate_images(studio, MIA, "a red circle", count=3)
    styled = generate_images(
        studio, MIA, "a red circle on the left", loras={"shine": 0.8}, templates=["frame"]
    )
    blue = generate_images(studio, MAX, "a blue square", count=2)
    studio.review.approve(REX, plain[0], "good")
    studio.review.reject(REX, plain[1], "off brief")
    studio.review.approve(REX, blue[0])
    return {"plain": plain, "styled": styled, "blue": blue}


def test_filters_sort_and_pages(studio: Any, stocked: dict[str, list[int]]) -> None:
    plain, styled, blue = stocked["plain"], stocked["styled"], stocked["blue"]
    everything = plain + styled + blue
    listing = studio.gallery.list_images
    assert _ids(listing(REX)) == sorted(everything, reverse=True)  # newest first
    assert _ids(listing(REX, GalleryFilter(sort="oldest"))) == sorted(everything)
    assert _ids(listing(REX, GalleryFilter(status="approved"))) == [blue[0], plain[0]]
    assert _ids(listing(REX, GalleryFilter(author="max"))) == blue[::-1]
    assert _ids(listing(REX, GalleryFilter(author="nobody"))) == []
    assert _ids(listing(REX, GalleryFilter(text="CIRCLE on"))) == styled
    assert _ids(listing(REX, GalleryFilter(text="100%"))) == []  # LIKE wildcards are literal
    options = studio.gallery.filter_options(REX)
    assert options.brands == ("acme",) and options.authors == ("max", "mia")
    (_, version_id), (_, template_id) = options.lora_versions[0], options.templates[0]
    assert _ids(listing(REX, GalleryFilter(lora_version_id=version_id))) == styled
    assert _ids(listing(REX, GalleryFilter(template_id=template_id))) == styled
    flagged = [i for i in everything if studio.gallery.detail(REX, i).item.palette_flag]
    assert sorted(_ids(listing(REX, GalleryFilter(palette_flag=True)))) == sorted(flagged)
    today = datetime.now(UTC).date()
    assert len(_ids(listing(REX, GalleryFilter(brand="acme", since=today, until=today.isoformat())))) == 6
    assert _ids(listing(REX, GalleryFilter(since=today + timedelta(days=1)))) == []
    scores = [i.palette_score for i in listing(REX, GalleryFilter(sort="palette_low")).items]
    assert scores == sorted(scores)

    first = listing(REX, page=1, page_size=4)
    second = listing(REX, page=2, page_size=4)
    assert first.has_next and not first.has_previous and not second.has_next and second.has_previous
    assert _ids(first) + _ids(second) == sorted(everything, reverse=True)

    with pytest.raises(ValidationError, match="since"):
        listing(REX, GalleryFilter(since="last week"))
    with pytest.raises(ValidationError, match="status"):
        listing(REX, GalleryFilter(status="maybe"))
    with pytest.raises(NotFoundError, match="brand 'acme' not found"):
        listing(OLGA, GalleryFilter(brand="acme"))


def test_who_sees_what(studio: Any, stocked: dict[str, list[int]]) -> None:
    plain, styled, blue = stocked["plain"], stocked["styled"], stocked["blue"]
    mine_and_approved = sorted([*plain, *styled, blue[0]], reverse=True)
    assert _ids(studio.gallery.list_images(MIA)) == mine_and_approved  # not max's pending one
    assert _ids(studio.gallery.list_images(MAX)) == sorted([*blue, plain[0]], reverse=True)
    assert _ids(studio.gallery.list_images(OLGA)) == []  # reviewer of no brand
    assert len(_ids(studio.gallery.list_images(SYSTEM))) == 6
    with pytest.raises(NotFoundError):
        studio.gallery.detail(MAX, plain[1])
    assert studio.gallery.detail(MAX, plain[0]).history[0].reviewer == "rex"


def test_compare_highlights_recipe_differences(studio: Any, stocked: dict[str, list[int]]) -> None:
    plain, styled = stocked["plain"], stocked["styled"]
    comparison = studio.gallery.compare(RITA, [plain[0], plain[2], styled[0]])
    differing = {row.key for row in comparison.differences}
    assert {"seed", "prompt", "prompt_typed", "review_status", "loras[0].weight"} <= differing
    assert "steps" not in differing and "base_model" not in differing
    seeds = next(row for row in comparison.rows if row.key == "seed").values
    assert seeds == tuple(str(d.item.seed) for d in comparison.images)
    with pytest.raises(ValidationError, match="2 to"):
        studio.gallery.compare(RITA, [plain[0]])
    with pytest.raises(NotFoundError):
        studio.gallery.compare(OLGA, plain[:2])


def test_export_holds_only_approved_images_with_metadata(
    studio: Any, stocked: dict[str, list[int]], tmp_path: Path
) -> None:
    plain, blue = stocked["plain"], stocked["blue"]
    out = tmp_path / "out" / "acme.zip"
    result = studio.gallery.export(MIA, out, flt=GalleryFilter(brand="acme"))
    assert result.path == out and sorted(result.image_ids) == sorted([plain[0], blue[0]])
    with zipfile.ZipFile(out) as archive:
        names = sorted(archive.namelist())
        assert names == sorted(
            [f"images/{plain[0]}.png", f"images/{blue[0]}.png", "metadata.csv", "metadata.json"]
        )
        original = studio.generation.get_image(MIA, plain[0]).path
        packed = archive.read(f"images/{plain[0]}.png")
        with Image.open(io.BytesIO(packed)) as exported, Image.open(original) as saved:  # + approval's C2PA
            assert exported.tobytes() == saved.tobytes() and exported.text == saved.text  # pixels, chunks
        (tmp_path / "x.png").write_bytes(packed)
        assert read_recipe(tmp_path / "x.png").seed == studio.gallery.detail(MIA, plain[0]).item.seed
        assert "Seed: " in (read_parameters(tmp_path / "x.png") or "")
        rows = {int(r["id"]): r for r in csv.DictReader(io.StringIO(archive.read("metadata.csv").decode()))}
        records = {r["id"]: r for r in json.loads(archive.read("metadata.json"))}
    assert set(rows) == set(records) == {plain[0], blue[0]}
    row, record = rows[plain[0]], records[plain[0]]
    assert (row["brand"], row["prompt"], row["reviewer"], row["review_comment"]) == (
        "acme",
        "a red circle",
        "rex",
        "good",
    )
    assert row["decision_time"] and float(row["palette_score"]) == record["palette_score"]
    assert json.loads(row["recipe"]) == record["recipe"] and record["recipe"]["seed"] == record["seed"]

    selection = studio.gallery.export(REX, tmp_path / "sel.zip", image_ids=plain)
    assert selection.image_ids == (plain[0],) and selection.skipped == (plain[1], plain[2])

    before = files_under(studio.settings.home)
    with pytest.raises(ValidationError, match="no approved images match"):
        studio.gallery.export(MIA, tmp_path / "none.zip", flt=GalleryFilter(text="no such prompt"))
    with pytest.raises(ValidationError, match="no approved images match"):
        studio.gallery.export(REX, tmp_path / "none.zip", image_ids=[plain[1], plain[2]])
    with pytest.raises(ValidationError, match="only approved"):
        studio.gallery.export(REX, tmp_path / "none.zip", flt=GalleryFilter(status="rejected"))
    assert not (tmp_path / "none.zip").exists() and files_under(studio.settings.home) == before
    with studio.engine.connect() as conn:
        exported = conn.execute(
            text("select count(*) from audit_events where action = 'export.create'")
        ).scalar()
    assert exported == 2

    default = studio.gallery.export(SYSTEM, flt=GalleryFilter(since=datetime.now(UTC).date()))
    assert default.path.parent == studio.gallery.exports_dir and default.count == 2
    assert not [p for p in default.path.parent.iterdir() if p.name.endswith(".tmp")]


def test_remix_gives_the_generate_form_the_same_recipe(studio: Any, stocked: dict[str, list[int]]) -> None:
    image_id = stocked["styled"][0]
    remix = studio.gallery.remix(MIA, image_id)
    assert (remix.brand, remix.prompt, remix.templates) == ("acme", "a red circle on the left", ("frame",))
    assert dict(remix.loras) == {"shine": 0.8} and remix.batch_size == 1
    again = studio.generation.generate(MIA, remix).images[0]
    assert again.pixel_sha256 == studio.generation.get_image(MIA, image_id).pixel_sha256
