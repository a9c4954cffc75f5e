"""Stored paths: relative inside the data folder, absolute outside, and back again."""

from __future__ import annotations

from pathlib import Path

from studio.storage import home_path, stored_path


def test_a_file_inside_home_is_stored_relative_and_found_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    inside = home / "loras" / "ab" / "x.safetensors"
    stored = stored_path(home, inside)
    assert stored == "loras/ab/x.safetensors"
    assert home_path(home, stored) == inside
    # a moved data folder still finds it
    assert home_path(tmp_path / "moved", stored) == tmp_path / "moved" / "loras/ab/x.safetensors"


def test_a_file_outside_home_is_stored_absolute(tmp_path: Path) -> None:
    home = tmp_path / "home"
    outside = tmp_path / "elsewhere" / ".." / "other.png"
    stored = stored_path(home, outside)
    assert stored == str((tmp_path / "other.png").resolve())
    assert home_path(home, stored) == (tmp_path / "other.png").resolve()
