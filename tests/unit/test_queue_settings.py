"""The web app's queue sizes are settings (issue 16, item 2): the whole queue (STUDIO_MAX_QUEUE_SIZE) and each
user's share of it (STUDIO_MAX_QUEUED_PER_USER)."""

from __future__ import annotations

import pytest

from studio.config import VARIABLES, Settings, SettingsError


def test_the_queue_sizes_are_settings_with_defaults_for_fifty_users() -> None:
    default = Settings.from_env({"STUDIO_HOME": "/tmp/h"})
    assert (default.max_queue_size, default.max_queued_per_user) == (256, 4)
    assert default.max_queue_size >= 50 * default.max_queued_per_user  # 50 users, each at their cap
    tuned = Settings.from_env(
        {"STUDIO_HOME": "/tmp/h", "STUDIO_MAX_QUEUE_SIZE": "500", "STUDIO_MAX_QUEUED_PER_USER": "2"}
    )
    assert (tuned.max_queue_size, tuned.max_queued_per_user) == (500, 2)
    for bad in ("0", "-3", "many"):
        with pytest.raises(SettingsError, match="STUDIO_MAX_QUEUE_SIZE"):
            Settings.from_env({"STUDIO_HOME": "/tmp/h", "STUDIO_MAX_QUEUE_SIZE": bad})
    assert VARIABLES["max_queue_size"].startswith("STUDIO_MAX_QUEUE_SIZE:")
    assert "max_queue_size" in default.public_dict()  # `studio config` shows it
