"""Generation's image look-ups (``get_image``, ``regenerate``) follow the gallery's visibility rule: marketers
see their own images and the approved ones of their brands, reviewers every image of their brands, admins all;
an image someone may not see gets the same error as an id that does not exist. Real service, real SQLite file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import snapshot
from review_support import MAX, MIA, OLGA, PASSWORD, REX, RITA

from studio.errors import NotFoundError, PermissionDeniedError
from studio.services.brand_files import BrandSpec
from studio.services.views import SYSTEM, Actor

GUS = Actor.user("gus")  # a marketer of another brand (globex), not of acme


@pytest.fixture
def globex(studio: Any, review_model_dir: Path) -> Any:
    """A second brand with its own marketer, gus."""
    spec = BrandSpec(
        slug="globex",
        name="Globex",
        palette=("#0000ff",),
        style_template="{prompt}",
        base_model=str(review_model_dir),
    )
    studio.brands.create_brand(SYSTEM, spec)
    studio.users.add_user(SYSTEM, "gus", ["marketer"], PASSWORD)
    studio.brands.grant(SYSTEM, "globex", "gus")
    return studio


def _refusal(call: Callable[[Any], Any], image_id: int) -> str:
    """The error text for ``image_id``, with the id replaced by N (to compare with a missing id's)."""
    with pytest.raises(NotFoundError) as caught:
        call(image_id)
    return str(caught.value).replace(str(image_id), "N")


def _missing(studio: Any) -> int:
    return max(item.id for item in studio.gallery.list_images(SYSTEM).items) + 1000


def test_own_pending_image_is_visible_to_its_author(studio: Any, make_images: Any) -> None:
    (image_id,) = make_images(MIA)
    seen = studio.generation.get_image(MIA, image_id)
    assert (seen.id, seen.review_status) == (image_id, "pending")
    again = studio.generation.regenerate(MIA, image_id).images[0]
    assert again.id != image_id and again.pixel_sha256 == seen.pixel_sha256


def test_another_members_pending_image_is_refused_like_a_missing_one(studio: Any, make_images: Any) -> None:
    (image_id,) = make_images(MAX)
    missing = _missing(studio)
    before = snapshot(studio)
    for call in (
        lambda i: studio.generation.get_image(MIA, i),
        lambda i: studio.generation.regenerate(MIA, i),
    ):
        assert _refusal(call, image_id) == _refusal(call, missing) == "image N not found"
    assert {k: v for k, v in snapshot(studio).items() if k != "audit_events"} == {
        k: v for k, v in before.items() if k != "audit_events"
    }
    # reviewers of the brand see pending images; one who is also a marketer may regenerate them
    assert studio.generation.get_image(REX, image_id).id == image_id
    assert studio.generation.get_image(RITA, image_id).id == image_id
    assert studio.generation.regenerate(RITA, image_id).images[0].review_status == "pending"
    assert studio.generation.get_image(SYSTEM, image_id).id == image_id


def test_approved_image_is_visible_to_every_member(studio: Any, make_images: Any) -> None:
    (image_id,) = make_images(MAX)
    studio.review.approve(REX, image_id, "on brief")
    seen = studio.generation.get_image(MIA, image_id)
    assert (seen.id, seen.review_status) == (image_id, "approved")
    made = studio.generation.regenerate(MIA, image_id).images[0]
    assert made.review_status == "pending" and made.pixel_sha256 == seen.pixel_sha256
    assert studio.generation.get_image(MIA, made.id).id == made.id  # the copy is mia's own
    with pytest.raises(NotFoundError):  # and pending: max does not see it
        studio.generation.get_image(MAX, made.id)
    with pytest.raises(PermissionDeniedError, match="marketer"):  # a reviewer sees it but does not generate
        studio.generation.regenerate(REX, image_id)


def test_other_brand_is_refused_like_a_missing_id(globex: Any, make_images: Any) -> None:
    studio = globex
    pending, approved = make_images(MIA, count=2)
    studio.review.approve(REX, approved, "fine")
    missing = _missing(studio)
    for actor in (GUS, OLGA):
        for call in (
            lambda i, a=actor: studio.generation.get_image(a, i),
            lambda i, a=actor: studio.generation.regenerate(a, i),
        ):
            for image_id in (pending, approved):
                assert _refusal(call, image_id) == _refusal(call, missing) == "image N not found"


def test_generation_and_gallery_agree_on_who_sees_what(globex: Any, make_images: Any) -> None:
    studio = globex
    made = make_images(MIA, count=2) + make_images(MAX, count=2)
    studio.review.approve(REX, made[0], "ok")
    studio.review.approve(REX, made[2], "ok")
    studio.review.reject(REX, made[3], "off brief")
    for actor in (MIA, MAX, REX, RITA, OLGA, GUS, SYSTEM):
        listed = {item.id for item in studio.gallery.list_images(actor).items}
        readable = set()
        for image_id in made:
            with contextlib.suppress(NotFoundError):
                readable.add(studio.generation.get_image(actor, image_id).id)
        assert readable == listed, actor
    assert {item.id for item in studio.gallery.list_images(MIA).items} == {made[0], made[1], made[2]}
