"""The editing API (issue 19, item "the API: named endpoints for the four kinds"), through ``gradio_client``
against a real local server (the UI built as ``app.py`` builds it, on 127.0.0.1) over a real SQLite file and
the embedded model.

``/edit_img2img_api``, ``/edit_inpaint_api``, ``/edit_expand_api`` and ``/edit_upscale_api`` take keyword
arguments (what is left out is the source image's setting, else the brand's default); ``/expand_all_api``
expands an approved image to every larger channel preset; ``/lineage_api`` lists parent and children.
The first test also writes the README's before/after pictures of each kind (``tests/e2e/screenshots/``).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from live_server import server  # noqa: F401 (the in-process UI server fixture)
from PIL import Image

from studio.services.views import Actor

PASSWORD = "correct horse"
MIA, REX = Actor.user("mia"), Actor.user("rex")
SHOTS = Path(__file__).resolve().parents[2] / "e2e" / "screenshots"
BOX = (20, 20, 44, 44)  # over the toy picture's centred shape


def _client(url: str, user: str = "mia") -> Any:
    from gradio_client import Client

    return Client(url, auth=(user, PASSWORD), verbose=False)


def _mask_png(box: tuple[int, int, int, int] = BOX, size: tuple[int, int] = (64, 64)) -> bytes:
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    out = io.BytesIO()
    mask.save(out, format="PNG")
    return out.getvalue()


def _pixels(studio: Any, image_id: int) -> np.ndarray:
    path = studio.generation.get_image(MIA, image_id).path
    return np.asarray(Image.open(path).convert("RGB"))


def before_after(before: Path, after: Path, name: str, zoom: int = 4) -> Path:
    """A README picture: the source and the edit side by side on a light strip, pixels enlarged ``zoom``×
    (nearest neighbour, so the 64-px toy pictures stay crisp)."""
    left, right = Image.open(before).convert("RGB"), Image.open(after).convert("RGB")
    gap = 8
    height = max(left.height, right.height)
    sheet = Image.new("RGB", (left.width + right.width + gap, height), (240, 240, 240))
    sheet.paste(left, (0, (height - left.height) // 2))
    sheet.paste(right, (left.width + gap, (height - right.height) // 2))
    sheet = sheet.resize((sheet.width * zoom, sheet.height * zoom), Image.Resampling.NEAREST)
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    sheet.save(path, format="PNG", optimize=True)
    return path


def test_the_four_kinds_by_name_make_new_images_with_their_parent(
    studio: Any,
    made: Any,
    server: str,  # noqa: F811
) -> None:
    client = _client(server)
    source = _pixels(studio, made.id)

    varied = client.predict(
        image_id=made.id, prompt="a blue circle on a white background, center", strength=0.8, seed=5,
        api_name="/edit_img2img_api",
    )  # fmt: skip
    assert (varied["kind"], varied["parent_image_id"], varied["strength"]) == ("img2img", made.id, 0.8)
    assert varied["image"]["review_status"] == "pending" and varied["image"]["width"] == 64

    mask = base64.b64encode(_mask_png()).decode()
    painted = client.predict(
        image_id=made.id, prompt="a blue circle on a white background, center", mask=mask, mask_blur=0,
        seed=5, api_name="/edit_inpaint_api",
    )  # fmt: skip
    assert (painted["kind"], painted["mask_blur"]) == ("inpaint", 0)
    inpainted = _pixels(studio, painted["image"]["id"])
    outside = np.ones((64, 64), bool)
    outside[BOX[1] : BOX[3], BOX[0] : BOX[2]] = False
    assert (inpainted[outside] == source[outside]).all(), "outside the mask the source's pixels stay"
    as_data_url = client.predict(
        image_id=made.id, mask="data:image/png;base64," + mask, seed=5, api_name="/edit_inpaint_api"
    )
    assert as_data_url["kind"] == "inpaint"

    wider = client.predict(
        image_id=made.id, size="banner", anchor="left", seed=5, api_name="/edit_expand_api"
    )
    assert (wider["image"]["width"], wider["image"]["height"], wider["anchor"]) == (112, 64, "left")
    assert (_pixels(studio, wider["image"]["id"])[:, :64] == source).all(), "the source stays where anchored"

    larger = client.predict(image_id=made.id, scale=2, seed=5, api_name="/edit_upscale_api")
    assert (larger["image"]["width"], larger["image"]["height"], larger["scale"]) == (128, 128, 2)

    lineage = client.predict(image_id=made.id, api_name="/lineage_api")
    children = {c["image"]["id"]: c["edit"]["kind"] for c in lineage["children"]}
    assert children == {
        varied["image"]["id"]: "img2img",
        painted["image"]["id"]: "inpaint",
        as_data_url["image"]["id"]: "inpaint",
        wider["image"]["id"]: "expand",
        larger["image"]["id"]: "upscale",
    }
    child = client.predict(image_id=wider["image"]["id"], api_name="/lineage_api")
    assert [a["image"]["id"] for a in child["ancestors"]] == [made.id]

    original = studio.generation.get_image(MIA, made.id).path  # the README's before/after pictures
    for name, result in (("img2img", varied), ("inpaint", painted), ("expand", wider), ("upscale", larger)):
        after = studio.generation.get_image(MIA, result["image"]["id"]).path
        assert before_after(original, after, f"edit-{name}").stat().st_size > 0


def test_expand_to_all_channel_sizes_by_name_groups_the_images(studio: Any, made: Any, server: str) -> None:  # noqa: F811
    client = _client(server)
    with pytest.raises(Exception, match="only approved images are expanded"):
        client.predict(image_id=made.id, api_name="/expand_all_api")
    studio.review.approve(REX, made.id)

    campaign = client.predict(image_id=made.id, seed=9, api_name="/expand_all_api")
    sizes = sorted((i["image"]["width"], i["image"]["height"]) for i in campaign["images"])
    assert sizes == [(64, 112), (112, 64)]
    assert {i["group_id"] for i in campaign["images"]} == {campaign["group_id"]}
    assert campaign["skipped"] == [{"size": "square", "why": "the image's own size"}]
    lineage = client.predict(image_id=campaign["images"][0]["image"]["id"], api_name="/lineage_api")
    assert [g["image"]["id"] for g in lineage["group"]] == [campaign["images"][1]["image"]["id"]]


def test_inpaint_by_a_marked_region_and_errors_that_name_the_field(
    studio: Any,
    made: Any,
    server: str,  # noqa: F811
) -> None:
    region = studio.editing.mark_region(REX, made.id, Image.open(io.BytesIO(_mask_png())), "the logo is off")
    client = _client(server)
    fixed = client.predict(image_id=made.id, region_id=region.id, seed=2, api_name="/edit_inpaint_api")
    edit = studio.editing.edit_of(MIA, fixed["image"]["id"])
    assert edit is not None and edit.mask_path is not None
    assert edit.mask_path.name.startswith(region.mask_sha256)

    with pytest.raises(Exception, match="scale"):
        client.predict(image_id=made.id, scale=3, api_name="/edit_upscale_api")
    with pytest.raises(Exception, match="mask"):
        client.predict(image_id=made.id, mask="not base64!", api_name="/edit_inpaint_api")
    with pytest.raises(Exception, match="competitor"):
        client.predict(image_id=made.id, prompt="a competitor logo", api_name="/edit_img2img_api")
    with pytest.raises(Exception, match="image_id"):
        client.predict(image_id=1.5, api_name="/edit_img2img_api")
    with pytest.raises(Exception, match="may not edit"):
        _client(server, "rex").predict(image_id=made.id, api_name="/edit_img2img_api")
    count = len(studio.editing.lineage(MIA, made.id).children)
    assert count == 1, "refused calls made no image"


def test_the_gallery_exports_an_approved_child_with_its_lineage(
    studio: Any,
    made: Any,
    server: str,  # noqa: F811
) -> None:
    import json
    import zipfile

    from gradio_http import GradioSession

    from studio.services.editing_input import EditInput

    studio.review.approve(REX, made.id)
    child = studio.editing.edit(MIA, EditInput("upscale", image_id=made.id, seed=1)).image.id
    studio.review.approve(REX, child)
    label = "Include lineage (what each edited image was made from; approved parents as files)"
    with GradioSession(server) as mia:
        assert mia.login("mia", PASSWORD).status_code == 200
        assert mia.call_named("list_page", {"Brand": "toy"}).ok  # the page's checkboxes: its images
        plain = mia.call_named("export_selected", {"Images on this page": [child], label: False})
        with_lineage = mia.call_named("export_selected", {"Images on this page": [child], label: True})
    assert plain.ok and with_lineage.ok, (plain.error, with_lineage.error)
    zips = sorted(studio.gallery.exports_dir.glob("*.zip"), key=lambda p: p.stat().st_mtime)
    assert len(zips) == 2
    with zipfile.ZipFile(zips[0]) as first, zipfile.ZipFile(zips[1]) as second:
        assert not [n for n in first.namelist() if n.startswith("lineage/")]
        assert f"lineage/{made.id}.png" in second.namelist()
        (record,) = json.loads(second.read("metadata.json"))
    assert record["id"] == child and record["made_by"]["kind"] == "upscale"
    assert [a["id"] for a in record["lineage"]] == [made.id]
