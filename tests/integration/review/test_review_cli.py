"""`studio review …` and `studio export` run in-process (typer's runner) against the fixture's data folder."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from review_support import MIA
from typer.testing import CliRunner

from studio.cli import app


def test_review_and_export_commands(studio: Any, make_images: Any, tmp_path: Path) -> None:
    first, second = make_images(MIA, count=2)
    runner = CliRunner()
    env = {"STUDIO_HOME": str(studio.settings.home)}

    def run(*args: str) -> Any:
        return runner.invoke(app, list(args), env=env)

    listed = run("review", "list", "--status", "pending", "--brand", "acme")
    assert listed.exit_code == 0 and f"{first:>7}  acme" in listed.output and "mia" in listed.output

    refused = run("review", "reject", str(first), "--as", "rex")
    assert refused.exit_code == 1 and "needs a comment" in refused.output
    assert run("review", "reject", str(first), "--as", "rex", "--comment", "too dark").exit_code == 0
    approved = run("review", "approve", str(second), "--as", "rex")
    assert approved.exit_code == 0 and f"image {second}: pending -> approved by rex" in approved.output
    again = run("review", "approve", str(second), "--as", "rita")
    assert again.exit_code == 1 and "already decided" in again.output
    hidden = run("review", "approve", str(second), "--as", "olga")
    assert hidden.exit_code == 1 and f"image {second} not found" in hidden.output

    out = tmp_path / "acme.zip"
    exported = run("export", "--brand", "acme", "--since", "2020-01-01", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == [f"images/{second}.png", "metadata.csv", "metadata.json"]
    empty = run("export", "--brand", "acme", "--since", "2999-01-01", "--out", str(tmp_path / "e.zip"))
    assert empty.exit_code == 1 and "no approved images match" in empty.output
    assert not (tmp_path / "e.zip").exists()
