"""EditingService on the embedded model with a real SQLite file: every kind saved as a new image with its
lineage and recipe, regenerate pixel for pixel, brand rules (permissions, banned terms, limits, review),
campaign batches and reviewer-marked regions."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from conftest import MIA, OLGA, PROMPT, REX, with_engine
from PIL import Image, ImageDraw
from sqlalchemy import func, select

from studio.db.edit_models import ImageEdit
from studio.db.generation_models import Image as ImageRow
from studio.engine.edit import changed_pixels
from studio.engine.limits import FamilyLimits
from studio.engine.recipe import read_parameters, read_recipe
from studio.errors import NotFoundError, PermissionDeniedError, ValidationError
from studio.services.editing import EditInput


def _pixels(path: Any) -> Image.Image:
    with Image.open(path) as image:
        return image.convert("RGB")


def _mask(box: tuple[int, int, int, int] = (20, 20, 43, 43), size: tuple[int, int] = (64, 64)) -> Image.Image:
    mask = Image.new("L", size, 0)
    ImageDraw.Draw(mask).rectangle(box, fill=255)
    return mask


def _count(studio: Any, model: Any) -> int:
    with studio.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(model)))


KINDS = {
    "img2img": {"strength": 0.5},
    "inpaint": {"mask": _mask(), "prompt": "a blue circle"},
    "expand": {"size": "banner", "anchor": "left"},
    "upscale": {"scale": 2},
}


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_is_a_new_image_with_its_lineage_and_regenerates_identically(
    studio: Any, made: Any, kind: str
) -> None:
    view = studio.editing.edit(MIA, EditInput(kind, image_id=made.id, seed=9, **KINDS[kind]))
    assert (view.kind, view.parent_image_id, view.image.review_status) == (kind, made.id, "pending")
    assert view.image.id != made.id and view.image.palette_score is not None
    source, after = _pixels(made.path), _pixels(view.image.path)
    recipe = read_recipe(view.image.path)
    assert recipe.edit is not None and (recipe.edit.kind, recipe.edit.parent_image_id) == (kind, made.id)
    assert "Denoising strength: " in (read_parameters(view.image.path) or "")
    if kind == "inpaint":
        assert changed_pixels(source, after, np.asarray(_mask()) < 128) == 0
        assert view.mask_path is not None and view.mask_path.is_file() and recipe.edit.mask_blur == 4
        assert "Mask blur: 4" in (read_parameters(view.image.path) or "")
    if kind == "expand":
        assert after.size == (112, 64) and changed_pixels(source, after.crop((0, 0, 64, 64))) == 0
    if kind == "upscale":
        assert after.size == (128, 128)
    assert view.source_path.is_file()
    again = studio.generation.regenerate(MIA, view.image.id).images[0]
    assert again.pixel_sha256 == view.image.pixel_sha256
    assert studio.editing.edit_of(MIA, again.id).parent_image_id == made.id


@pytest.mark.both_databases
def test_lineage_shows_parents_and_children(studio: Any, made: Any) -> None:
    first = studio.editing.edit(MIA, EditInput("img2img", image_id=made.id, strength=0.4, seed=1))
    second = studio.editing.edit(MIA, EditInput("upscale", image_id=first.image.id, seed=1))
    lineage = studio.editing.lineage(MIA, second.image.id)
    assert [item.image.id for item in lineage.ancestors] == [first.image.id, made.id]
    assert lineage.ancestors[-1].edit is None  # made from text
    assert [item.image.id for item in studio.editing.lineage(MIA, made.id).children] == [first.image.id]
    source, mask = studio.editing.edit_images(MIA, first.image.id)
    assert mask is None and changed_pixels(source, _pixels(made.path)) == 0


def test_a_marketer_edits_their_own_images_or_approved_ones(studio: Any, made: Any) -> None:
    request = EditInput("img2img", image_id=made.id, strength=0.4)
    with pytest.raises(NotFoundError, match=f"image {made.id} not found"):
        studio.editing.edit(OLGA, request)  # mia's image, still pending
    with pytest.raises(PermissionDeniedError, match="rex may not edit images"):
        studio.editing.edit(REX, request)
    studio.review.approve(REX, made.id)
    assert studio.editing.edit(OLGA, request).parent_image_id == made.id
    allowed = with_engine(
        studio, studio.engines.get(), dataclasses.replace(studio.settings, reviewers_may_edit=True)
    )
    assert allowed.editing.edit(REX, request).image.review_status == "pending"


def test_refusals_write_nothing(studio: Any, made: Any) -> None:
    images, edits = _count(studio, ImageRow), _count(studio, ImageEdit)
    cases = [
        (
            EditInput("img2img", image_id=made.id, prompt="a competitor circle"),
            "prompt: contains 'competitor'",
        ),
        (EditInput("inpaint", image_id=made.id, mask=_mask(size=(32, 32))), "mask: is 32x32"),
        (EditInput("inpaint", image_id=made.id), "mask: inpainting needs"),
        (EditInput("expand", image_id=made.id), "size: choose the size to expand to"),
        (EditInput("expand", image_id=made.id, size="poster"), "size: brand toy has no size 'poster'"),
        (EditInput("expand", image_id=made.id, size="96x64"), "size: 96x64 is not a size of brand toy"),
        (EditInput("upscale", image_id=made.id, scale=3), "scale: 3 is not offered"),
        (EditInput("img2img", image_id=made.id, strength=2), "strength: 2 is outside 0-1"),
        (EditInput("img2img", image_id=made.id, size="banner"), "size: img2img keeps the image's size"),
        (EditInput("blur", image_id=made.id), "kind: 'blur' is not an edit"),
        (
            EditInput("img2img", source=b"not a png", brand="toy", prompt="a"),
            "source: upload: not a readable",
        ),
        (EditInput("img2img", source=b"x"), "brand: choose the brand"),
    ]
    for request, message in cases:
        with pytest.raises(ValidationError, match=message):
            studio.editing.edit(MIA, request)
    assert (_count(studio, ImageRow), _count(studio, ImageEdit)) == (images, edits)
    assert not (studio.settings.home / "edits").exists()


def test_the_limits_of_the_model_family_apply_to_the_output(services: Any, studio: Any, made: Any) -> None:
    tight = dataclasses.replace(
        studio.settings, family_limits=(("embedded", FamilyLimits(pixels=100 * 100, images=8, steps=50)),)
    )
    limited = with_engine(studio, studio.engines.get(), tight)
    with pytest.raises(ValidationError, match="size: 128x128 is 16,384 pixels, more than 10,000"):
        limited.editing.edit(MIA, EditInput("upscale", image_id=made.id))


def test_a_file_can_be_edited_for_a_brand(studio: Any, made: Any) -> None:
    view = studio.editing.edit(
        MIA, EditInput("img2img", source=made.path.read_bytes(), brand="toy", prompt=PROMPT, strength=0.4)
    )
    assert view.parent_image_id is None and view.image.brand_slug == "toy"
    again = studio.generation.regenerate(MIA, view.image.id).images[0]
    assert again.pixel_sha256 == view.image.pixel_sha256


@pytest.mark.both_databases
def test_an_approved_image_expands_to_every_larger_preset(studio: Any, made: Any) -> None:
    with pytest.raises(ValidationError, match="only approved images are expanded"):
        studio.editing.expand_to_all_presets(MIA, EditInput("expand", image_id=made.id))
    studio.review.approve(REX, made.id)
    campaign = studio.editing.expand_to_all_presets(MIA, EditInput("expand", image_id=made.id, seed=4))
    sizes = sorted((edit.image.width, edit.image.height) for edit in campaign.edits)
    assert sizes == [(64, 112), (112, 64)] and campaign.skipped == (("square", "the image's own size"),)
    assert {edit.group_id for edit in campaign.edits} == {campaign.group_id}
    assert all(edit.image.review_status == "pending" for edit in campaign.edits)
    assert {e.image.id for e in studio.editing.group(REX, campaign.group_id)} == {
        e.image.id for e in campaign.edits
    }
    lineage = studio.editing.lineage(REX, campaign.edits[0].image.id)
    assert [item.image.id for item in lineage.group] == [campaign.edits[1].image.id]


@pytest.mark.both_databases
def test_a_region_a_reviewer_marks_is_what_fix_region_repaints(studio: Any, made: Any) -> None:
    with pytest.raises(PermissionDeniedError):
        studio.editing.mark_region(MIA, made.id, _mask())
    region = studio.editing.mark_region(REX, made.id, _mask((8, 8, 27, 27)), "the logo is off")
    assert studio.editing.regions(MIA, made.id)[0].id == region.id and region.marked_by == "rex"
    assert np.asarray(studio.editing.region_mask(MIA, region.id)).max() == 255
    view = studio.editing.edit(MIA, EditInput("inpaint", image_id=made.id, region_id=region.id))
    outside = np.asarray(_mask((8, 8, 27, 27))) < 128
    assert changed_pixels(_pixels(made.path), _pixels(view.image.path), outside) == 0
    assert view.mask_path is not None and view.mask_path.name.startswith(region.mask_sha256)
    with pytest.raises(NotFoundError, match="region 999 not found"):
        studio.editing.edit(MIA, EditInput("inpaint", image_id=made.id, region_id=999))


def test_check_names_the_refusal_without_running(studio: Any, made: Any) -> None:
    images = _count(studio, ImageRow)
    problem = studio.editing.check(MIA, EditInput("upscale", image_id=made.id, scale=3))
    assert isinstance(problem, ValidationError) and problem.field == "scale"
    assert studio.editing.check(MIA, EditInput("expand", image_id=made.id, size="story")) is None
    assert _count(studio, ImageRow) == images
