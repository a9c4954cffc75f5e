"""STUDIO_GENERATION and ``studio worker --kinds`` (issue 20): bad values are refused naming the setting."""

from __future__ import annotations

import pytest

from studio.config import Settings, SettingsError
from studio.errors import ValidationError
from studio.training.worker import parse_kinds
from studio.worker_main import default_kinds


def test_generation_is_inline_unless_queue_is_asked_for(tmp_path) -> None:  # noqa: ANN001
    home = {"STUDIO_HOME": str(tmp_path)}
    assert Settings.from_env(home).generation == "inline"
    queued = Settings.from_env({**home, "STUDIO_GENERATION": " Queue "})
    assert queued.generation == "queue"
    with pytest.raises(SettingsError, match="STUDIO_GENERATION must be inline or queue, not 'gpu'"):
        Settings.from_env({**home, "STUDIO_GENERATION": "gpu"})
    assert default_kinds(Settings.from_env(home)) == "train"
    assert default_kinds(queued) == "generate,train"


def test_worker_kinds_are_checked() -> None:
    assert parse_kinds("generate, train") == ("generate", "train")
    assert parse_kinds("train,train") == ("train",)
    with pytest.raises(ValidationError, match="kinds: render: use train and/or generate"):
        parse_kinds("generate,render")
    with pytest.raises(ValidationError, match="kinds: none given"):
        parse_kinds(" , ")
