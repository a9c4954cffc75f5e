"""The app shell's landing tab and its next-step line (issue 15, items 1 and 5): who opens where, and what
each empty state tells them to do."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from studio.services.users import StudioOverview
from studio.services.views import UserView
from studio.ui.app import landing_tab, next_step


def person(roles: tuple[str, ...], brands: tuple[str, ...] = ()) -> UserView:
    now = datetime.now(UTC)
    return UserView(1, "sam", roles, False, None, None, now, brands)


@pytest.mark.parametrize(
    ("roles", "tab"),
    [
        ({"admin", "reviewer"}, "Brands"),
        ({"reviewer"}, "Review"),
        ({"marketer", "reviewer"}, "Review"),
        ({"marketer"}, "Generate"),
        (set(), None),
    ],
)
def test_each_role_opens_on_its_tab(roles: set[str], tab: str | None) -> None:
    assert landing_tab(roles) == tab


def test_the_next_step_line() -> None:
    first = next_step(StudioOverview(person(("admin",), ("ember", "lagoon")), user_count=1, brand_count=2))
    assert first.startswith("Welcome to Brand Studio") and "ember, lagoon" in first and "Users" in first
    empty = next_step(StudioOverview(person(("admin",)), user_count=1, brand_count=0))
    assert "no brand yet" in empty and "Create or edit a brand" in empty
    assert "add yourself" in next_step(StudioOverview(person(("admin",)), user_count=3, brand_count=2))
    assert next_step(StudioOverview(person(("admin",), ("ember",)), user_count=3, brand_count=2)) == ""
    assert next_step(StudioOverview(person(("marketer",)))) == (
        "You have no brand yet: ask an admin to add you to one (**Brands → Members**)."
    )
    assert next_step(StudioOverview(person(("reviewer",), ("lagoon",)))) == ""
    assert "no role yet" in next_step(StudioOverview(person(())))
