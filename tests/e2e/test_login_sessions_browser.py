"""Issue 16, logins and sessions, in real Chromium against ``python app.py`` on a fresh data folder:

- ``MIA`` signs in through the login form as ``mia``, and the app works for her (her tabs, her name);
- Change my password refuses a wrong current password with a warning, accepts the right one, and then the
  page's session is over: a reload shows the sign-in form; the new password lets her in;
- a session ends when an admin disables the account from the shell (another process): a reload of the
  open page shows the sign-in form.
"""

from __future__ import annotations

import pytest
from e2e_support import RunningStudio, assert_no_error_state, screenshot
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e]

VIEWPORT = {"width": 1366, "height": 768}
WAIT = 60_000
FIRST, SECOND = "mia-first-password", "mia-second-password"


def sign_in(browser: object, url: str, typed_name: str, password: str):  # noqa: ANN201
    """A new page, signed in through the form with the name as typed; waits for the header."""
    page = browser.new_context(viewport=VIEWPORT).new_page()  # type: ignore[attr-defined]
    page.goto(url + "/")
    page.get_by_label("username").fill(typed_name)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login", exact=True).click()
    page.get_by_text("Signed in as mia").wait_for(timeout=WAIT)
    return page


def expect_sign_in_form(page: object) -> None:
    page.reload()  # type: ignore[attr-defined]
    expect(page.get_by_role("button", name="Login", exact=True)).to_be_visible(timeout=WAIT)  # type: ignore[attr-defined]


def test_case_insensitive_sign_in_own_password_change_and_sessions_ending(
    studio_server: RunningStudio, browser: object
) -> None:
    added = studio_server.cli("users", "add", "mia", "--role", "marketer", "--password-stdin", stdin=FIRST)
    assert added.returncode == 0, added.stderr
    page = sign_in(browser, studio_server.url, "MIA", FIRST)
    expect(page.get_by_role("tab", name="Generate")).to_be_visible(timeout=WAIT)
    assert_no_error_state(page, "after signing in as MIA")

    page.get_by_text("Change my password").first.click()
    page.get_by_label("Current password").fill("not-her-password")
    page.get_by_label("New password").fill(SECOND)
    page.get_by_role("button", name="Change password", exact=True).click()
    expect(page.locator("#account-status")).to_contain_text("current password: is wrong", timeout=WAIT)
    page.get_by_label("Current password").fill(FIRST)
    page.get_by_label("New password").fill(SECOND)
    page.get_by_role("button", name="Change password", exact=True).click()
    expect(page.locator("#account-status")).to_contain_text("Password changed", timeout=WAIT)
    screenshot(page, "login-sessions-password-changed")
    expect_sign_in_form(page)

    again = sign_in(browser, studio_server.url, "mia", SECOND)
    disabled = studio_server.cli("users", "disable", "mia")
    assert disabled.returncode == 0, disabled.stderr
    expect_sign_in_form(again)
    screenshot(again, "login-sessions-disabled-signed-out")
