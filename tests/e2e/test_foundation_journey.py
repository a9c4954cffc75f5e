"""Issue 2 in a real browser: an admin creates a brand; a marketer sees no Users tab nor calls its API."""

from __future__ import annotations

import sqlite3

import pytest
from e2e_support import ADMIN_PASSWORD, RunningStudio, login, screenshot

pytestmark = pytest.mark.e2e


def count_rows(studio: RunningStudio, table: str) -> int:
    with sqlite3.connect(studio.home / "studio.db") as connection:
        return connection.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


def test_admin_creates_a_brand_and_sees_it_listed(studio_server: RunningStudio, browser: object) -> None:
    page = login(browser, studio_server.url, "admin", ADMIN_PASSWORD)
    page.get_by_role("tab", name="Users").wait_for()
    page.get_by_role("tab", name="Brands").click()
    page.get_by_text("Create or edit a brand (admin)").click()
    page.get_by_label("Slug").fill("northwind")
    page.get_by_label("Name", exact=True).fill("Northwind")
    page.get_by_label("Palette").fill("#008080, orange, #ffffff")
    page.get_by_role("button", name="Create brand", exact=True).click()
    page.get_by_text("Brand northwind created.").wait_for(timeout=30_000)
    page.get_by_role("gridcell", name="northwind", exact=True).wait_for(timeout=30_000)
    screenshot(page, "admin-brand-created")
    with sqlite3.connect(studio_server.home / "studio.db") as connection:
        made = connection.execute("SELECT COUNT(*) FROM brands WHERE slug = 'northwind'").fetchone()[0]
    assert made == 1


def test_marketer_sees_no_users_tab_and_cannot_call_its_api(
    studio_server: RunningStudio, browser: object
) -> None:
    added = studio_server.cli(
        "users", "add", "mia", "--role", "marketer", "--password-stdin", stdin="mia-password\n"
    )
    assert added.returncode == 0, added.stderr
    page = login(browser, studio_server.url, "mia", "mia-password")
    page.get_by_role("tab", name="Brands").wait_for()
    assert page.get_by_role("tab", name="Users").count() == 0
    screenshot(page, "marketer-home")

    from gradio_client import Client

    users_before = count_rows(studio_server, "users")
    client = Client(studio_server.url, auth=("mia", "mia-password"), verbose=False)
    with pytest.raises(Exception, match="may not"):
        client.predict("eve", "eve-password-1", ["admin"], api_name="/add_user")
    with pytest.raises(Exception, match="may not"):
        client.predict(api_name="/list_users")
    assert count_rows(studio_server, "users") == users_before
