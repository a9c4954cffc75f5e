"""Who sees the Generate tab and its text-to-image form (issue 19): reviewers see the tab (its edit mode) only
where reviewers may edit (STUDIO_REVIEWERS_MAY_EDIT), and the text-to-image form only with the marketer or
admin role."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from studio.config import Settings
from studio.ui.app import TABS, tab_roles
from studio.ui.generate_tab import may_generate


@pytest.mark.parametrize("reviewers_may_edit", [False, True])
def test_reviewers_see_the_generate_tab_only_where_they_may_edit(
    tmp_path: Path, reviewers_may_edit: bool
) -> None:
    settings = dataclasses.replace(
        Settings.from_env({"STUDIO_HOME": str(tmp_path)}), reviewers_may_edit=reviewers_may_edit
    )
    seen = {spec.title: tab_roles(spec, settings) for spec in TABS}
    assert ("reviewer" in seen["Generate"]) is reviewers_may_edit
    assert {"marketer", "admin"} <= seen["Generate"]
    assert seen["Review"] == frozenset({"reviewer", "admin"})  # the others as they were


@pytest.mark.parametrize(
    ("roles", "form"),
    [({"reviewer"}, False), ({"reviewer", "marketer"}, True), ({"marketer"}, True), ({"admin"}, True)],
)
def test_the_text_to_image_form_is_for_those_who_generate(roles: set[str], form: bool) -> None:
    assert may_generate(roles) is form
