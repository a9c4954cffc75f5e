"""`studio regenerate FILE.png` of an edited studio PNG whose image the studio does not have (issue 19): made
again from the source and mask its recipe names by hash when they are in the studio's store (same pixels, a
new image with its lineage), refused saying the source image is needed when they are not (nothing written,
never a text-to-image of the recipe)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import MIA
from PIL import Image, ImageDraw
from sqlalchemy import delete, func, select
from typer.testing import CliRunner

from studio.cli import app
from studio.db.edit_models import ImageEdit
from studio.db.generation_models import Image as ImageRow
from studio.services.editing import EditInput


def _forget(studio: Any, image_id: int) -> None:
    """The studio no longer has the image (its rows gone; the stored source and mask stay)."""
    with studio.sessions.begin() as session:
        session.execute(delete(ImageEdit).where(ImageEdit.image_id == image_id))
        session.execute(delete(ImageRow).where(ImageRow.id == image_id))


def _images(studio: Any) -> int:
    with studio.sessions() as session:
        return int(session.scalar(select(func.count()).select_from(ImageRow)))


def _regenerate(home: Path, png: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("STUDIO_HOME", str(home))
    return CliRunner().invoke(app, ["regenerate", str(png), "--user", "mia", "--brand", "toy", "--json"])


@pytest.mark.parametrize("kind", ["img2img", "inpaint"])
def test_an_edit_the_studio_does_not_have_is_made_again_from_the_stored_source(
    studio: Any, made: Any, studio_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((16, 16, 47, 47), fill=255)
    extra: dict[str, Any] = (
        {"strength": 0.6} if kind == "img2img" else {"mask": mask, "prompt": "a blue circle"}
    )
    view = studio.editing.edit(MIA, EditInput(kind, image_id=made.id, seed=4, **extra))
    png = tmp_path / "edited.png"
    shutil.copyfile(view.image.path, png)
    _forget(studio, view.image.id)

    done = _regenerate(studio_home, png, monkeypatch)
    assert done.exit_code == 0, done.output
    again = json.loads(done.stdout)["images"][0]
    assert again["pixel_sha256"] == view.image.pixel_sha256  # the same edit, not a text-to-image
    edit = studio.editing.edit_of(MIA, again["id"])
    assert (edit.kind, edit.parent_image_id, edit.strength) == (kind, made.id, view.strength)
    assert "not mapped" not in done.output


def test_without_the_stored_source_it_is_refused_saying_the_source_is_needed(
    studio: Any, made: Any, studio_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = studio.editing.edit(MIA, EditInput("upscale", image_id=made.id, seed=4))
    png = tmp_path / "upscaled.png"
    shutil.copyfile(view.image.path, png)
    _forget(studio, view.image.id)
    view.source_path.unlink()
    before = _images(studio)

    done = _regenerate(studio_home, png, monkeypatch)
    assert done.exit_code != 0
    assert "source" in done.output and "the source image is needed to make it again" in done.output
    assert "upscaled.png is an edit (upscale)" in done.output
    assert _images(studio) == before  # nothing made in its place


def test_a_missing_mask_is_refused_naming_the_mask(
    studio: Any, made: Any, studio_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mask = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(mask).rectangle((8, 8, 30, 30), fill=255)
    view = studio.editing.edit(MIA, EditInput("inpaint", image_id=made.id, seed=4, mask=mask))
    png = tmp_path / "painted.png"
    shutil.copyfile(view.image.path, png)
    _forget(studio, view.image.id)
    assert view.mask_path is not None
    view.mask_path.unlink()
    assert view.source_path.is_file()
    done = _regenerate(studio_home, png, monkeypatch)
    assert done.exit_code != 0 and "mask" in done.output and "needed to make it again" in done.output
