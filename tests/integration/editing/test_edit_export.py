"""Exporting an approved child with its lineage (issue 19): the ancestors the exporter may see in the metadata
(id, review status, edit, recipe), the approved ancestors' PNGs under lineage/, never a pending or rejected
picture; the default export is unchanged; `studio export --with-lineage`."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import MIA, OLGA, REX
from PIL import Image
from typer.testing import CliRunner

from studio.cli import app
from studio.services.editing import EditInput


@pytest.fixture
def family(studio: Any, made: Any) -> dict[str, int]:
    """made (approved) → img2img by mia (left pending) → upscale of it (approved)."""
    studio.review.approve(REX, made.id)
    middle = studio.editing.edit(MIA, EditInput("img2img", image_id=made.id, strength=0.4, seed=1))
    child = studio.editing.edit(MIA, EditInput("upscale", image_id=middle.image.id, seed=1))
    studio.review.approve(REX, child.image.id)
    return {"root": made.id, "middle": middle.image.id, "child": child.image.id}


def _metadata(path: Path) -> tuple[list[str], list[dict[str, Any]], list[dict[str, str]]]:
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        records = json.loads(archive.read("metadata.json"))
        rows = list(csv.DictReader(io.StringIO(archive.read("metadata.csv").decode())))
        for name in names:
            if name.endswith(".png"):
                with Image.open(io.BytesIO(archive.read(name))) as picture:
                    assert "Steps: " in picture.text["parameters"]  # the original's text chunks
    return names, records, rows


def test_an_approved_child_exports_with_its_lineage(
    studio: Any, family: dict[str, int], tmp_path: Path
) -> None:
    root, middle, child = family["root"], family["middle"], family["child"]
    result = studio.gallery.export(MIA, tmp_path / "with.zip", image_ids=[child], with_lineage=True)
    assert result.image_ids == (child,) and result.lineage_ids == (root,)
    names, [record], [row] = _metadata(result.path)
    # the approved root's PNG comes along; the pending middle image never leaves the studio
    assert names == [f"images/{child}.png", f"lineage/{root}.png", "metadata.csv", "metadata.json"]
    assert record["made_by"]["kind"] == "upscale" and record["made_by"]["parent_image_id"] == middle
    assert record["lineage_complete"] is True
    near, far = record["lineage"]
    assert (near["id"], near["review_status"], near["file"]) == (middle, "pending", "")
    assert near["made_by"]["kind"] == "img2img" and near["made_by"]["strength"] == 0.4
    assert near["made_by"]["parent_image_id"] == root and near["recipe"]["edit"]["kind"] == "img2img"
    assert (far["id"], far["review_status"], far["file"], far["made_by"]) == (
        root,
        "approved",
        f"lineage/{root}.png",
        None,
    )
    assert far["reviewer"] == "rex" and far["decision_time"] and far["recipe"]["prompt"]
    assert [a["id"] for a in json.loads(row["lineage"])] == [middle, root]
    assert json.loads(row["made_by"])["kind"] == "upscale"

    plain = studio.gallery.export(MIA, tmp_path / "plain.zip", image_ids=[child])
    names, [record], [row] = _metadata(plain.path)
    assert names == [f"images/{child}.png", "metadata.csv", "metadata.json"] and plain.lineage_ids == ()
    assert "lineage" not in record and "made_by" not in record and "lineage" not in row  # unchanged


def test_lineage_stops_at_an_ancestor_the_exporter_may_not_see(
    studio: Any, family: dict[str, int], tmp_path: Path
) -> None:
    both = studio.gallery.export(
        OLGA, tmp_path / "olga.zip", image_ids=[family["child"], family["root"]], with_lineage=True
    )
    names, records, _ = _metadata(both.path)
    assert both.lineage_ids == () and not any(name.startswith("lineage/") for name in names)
    by_id = {r["id"]: r for r in records}
    child = by_id[family["child"]]
    assert child["lineage"] == [] and child["lineage_complete"] is False  # mia's pending image is hidden
    assert by_id[family["root"]]["made_by"] is None and by_id[family["root"]]["lineage_complete"] is True


def test_studio_export_with_lineage(
    studio: Any, family: dict[str, int], studio_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STUDIO_HOME", str(studio_home))
    out = tmp_path / "cli.zip"
    done = CliRunner().invoke(app, ["export", "--out", str(out), "--as", "mia", "--with-lineage"])
    assert done.exit_code == 0, done.output
    assert "with 1 approved ancestor(s)" not in done.output  # the root is exported itself (approved)
    names, records, _ = _metadata(out)
    assert f"images/{family['root']}.png" in names and not any(n.startswith("lineage/") for n in names)
    child = next(r for r in records if r["id"] == family["child"])
    assert [a["id"] for a in child["lineage"]] == [family["middle"], family["root"]]
    assert child["lineage"][1]["file"] == f"images/{family['root']}.png"
    assert "--with-lineage" in CliRunner().invoke(app, ["export", "--help"]).output
