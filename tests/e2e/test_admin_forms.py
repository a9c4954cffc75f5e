"""The admin's first hour at 1366×768 in real Chromium against ``python app.py`` on a fresh data folder
(issue 15, items 1, 2, 5 and 6 for the shell, the Brands and the Users tabs):

- the first start imported the demo brands and granted them to the admin, who opens on Brands with a
  one-line welcome saying what to do next;
- bad input to every form of the Brands and Users tabs is a warning, never Gradio's red "Error" in a
  component: afterwards every input and output is still there, keeps what was typed, and works;
- members are picked from a list of users;
- a locked-out user is told so on the sign-in page, with how long; Unlock lets them in; a marketer opens on
  Generate, a reviewer on Review, and someone with no brand is told how to get one.

Screenshots go to ``tests/e2e/artifacts/``.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from e2e_support import ADMIN_PASSWORD, ARTIFACTS, RunningStudio, assert_no_error_state, close_toasts
from playwright.sync_api import expect

pytestmark = [pytest.mark.e2e]

VIEWPORT = {"width": 1366, "height": 768}
PASSWORD = "admin-forms-password"
WAIT = 60_000


def sign_in(browser: Any, url: str, username: str, password: str) -> Any:
    """A fresh 1366×768 page, signed in through the login form."""
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.goto(url + "/")
    page.get_by_label("username").fill(username)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login", exact=True).click()
    page.get_by_text(f"Signed in as {username}").wait_for(timeout=WAIT)
    return page


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def rows(studio: RunningStudio, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(studio.home / "studio.db") as connection:
        return connection.execute(sql).fetchall()


def block(page: Any, label: str) -> Any:
    """The visible component block labelled exactly ``label``."""
    blocks = page.locator(".block").filter(has=page.get_by_text(label, exact=True))
    return blocks.filter(visible=True).last


def field(page: Any, label: str) -> Any:
    return block(page, label).locator("textarea, input").first


def button(page: Any, name: str) -> Any:
    return page.get_by_role("button", name=name, exact=True).filter(visible=True).first


def submit_and_expect_warning(
    page: Any, button_name: str, warning: str | re.Pattern[str], where: str
) -> None:
    """Click ``button_name``; the warning shows (a toast and/or a line by the form); nothing errors."""
    button(page, button_name).click()
    expect(page.get_by_text(warning).filter(visible=True).first).to_be_visible(timeout=WAIT)
    assert_no_error_state(page, where)
    close_toasts(page)  # toasts pile up over the header


def assert_usable(page: Any, labels: list[str], where: str) -> None:
    """Every labelled component is visible and, when it takes input, editable."""
    for label in labels:
        target = block(page, label)
        expect(target, f"{where}: {label} is gone").to_be_visible(timeout=WAIT)
        inputs = target.locator("textarea, input:not([type=file]):not([type=checkbox]):not([type=radio])")
        if inputs.count():
            assert inputs.first.is_editable(), f"{where}: {label} cannot be edited"


def test_first_start_imports_the_demo_brands_and_welcomes_the_admin(
    studio_server: RunningStudio, browser: Any
) -> None:
    assert "Imported the demo brands ember, lagoon" in studio_server.log.read_text()
    members = rows(
        studio_server,
        "select b.slug from brand_members m join brands b on b.id = m.brand_id "
        "join users u on u.id = m.user_id where u.username = 'admin' order by 1",
    )
    assert members == [("ember",), ("lagoon",)]
    page = sign_in(browser, studio_server.url, "admin", ADMIN_PASSWORD)
    expect(page.get_by_role("tab", name="Brands", selected=True)).to_be_visible(timeout=WAIT)  # lands here
    welcome = page.locator("#studio-notice")
    expect(welcome).to_contain_text("Welcome to Brand Studio", timeout=WAIT)
    expect(welcome).to_contain_text("Users")
    for slug in ("ember", "lagoon"):
        expect(page.get_by_role("gridcell", name=slug, exact=True)).to_be_visible(timeout=WAIT)
    assert_no_error_state(page, "first start")
    shot(page, "admin-forms-first-start")

    page.get_by_role("tab", name="Users").click()
    only_you = page.get_by_text("Only you so far").first  # the empty state says what to do
    expect(only_you).to_be_visible(timeout=WAIT)


def test_bad_input_to_every_admin_form_keeps_every_component(
    studio_server: RunningStudio, browser: Any, tmp_path: Path
) -> None:
    page = sign_in(browser, studio_server.url, "admin", ADMIN_PASSWORD)
    expect(page.get_by_role("gridcell", name="lagoon", exact=True)).to_be_visible(timeout=WAIT)

    # ---------------------------------------------------------------- Users: every button, bad input
    page.get_by_role("tab", name="Users").click()
    field(page, "Username").fill("Bad Name!")
    field(page, "Password").fill("short")
    submit_and_expect_warning(page, "Add user", re.compile(r"username: 'bad name!'"), "Add user")
    field(page, "Username").fill("nobody")
    for name in ("Set roles", "Disable", "Enable", "Unlock"):
        submit_and_expect_warning(page, name, "user 'nobody' not found", name)
    submit_and_expect_warning(page, "Reset password", re.compile(r"password: must be at least 8"), "Reset")
    assert field(page, "Username").input_value() == "nobody", "the form keeps what was typed"
    assert field(page, "Password").input_value() == "short"
    expect(page.locator("#users-status")).to_contain_text("password: must be at least 8")
    assert_usable(page, ["Users", "Username", "Password", "Roles"], "Users")
    # and it still works: a marketer and a reviewer, the table listed again after each
    for name, role in (("mia", "marketer"), ("rex", "reviewer")):
        field(page, "Username").fill(name)
        field(page, "Password").fill(PASSWORD)
        for choice in ("marketer", "reviewer", "admin"):
            box = page.get_by_label(choice, exact=True).filter(visible=True).first
            if box.is_checked() != (choice == role):
                box.click()
        button(page, "Add user").click()
        expect(page.get_by_role("gridcell", name=name, exact=True)).to_be_visible(timeout=WAIT)
    assert_no_error_state(page, "Users after adding")

    # ---------------------------------------------------------------- Brands: every form, bad input
    page.get_by_role("tab", name="Brands").click()
    page.get_by_text("Create or edit a brand (admin)").click()
    submit_and_expect_warning(page, "Load the selected brand into the form", "pick the brand to edit", "Load")
    field(page, "Slug").fill("Not A Slug")
    field(page, "Name").fill("Broken")
    field(page, "Palette").fill("not-a-colour")
    submit_and_expect_warning(page, "Create brand", re.compile(r"slug|palette"), "Create brand")
    submit_and_expect_warning(page, "Save changes", re.compile(r"slug|palette"), "Save changes")
    assert field(page, "Palette").input_value() == "not-a-colour", "the brand form keeps what was typed"
    assert_usable(
        page,
        ["Slug", "Name", "Description", "Palette", "Style prompt template", "Size presets", "Base model"],
        "brand form",
    )
    page.get_by_text("Create or edit a brand (admin)").click()  # fold it

    page.get_by_text("Upload a LoRA (admin)").click()
    submit_and_expect_warning(page, "Upload LoRA", "pick a brand above first", "Upload LoRA, no brand")
    brand_picker = page.get_by_label("Brand", exact=True).filter(visible=True).first
    brand_picker.click()
    page.get_by_role("option", name="lagoon", exact=True).click()
    expect(page.get_by_text("Style template:").first).to_be_visible(timeout=WAIT)
    submit_and_expect_warning(page, "Upload LoRA", "choose a .safetensors file", "Upload LoRA, no file")
    fake_lora = tmp_path / "not-a-lora.safetensors"
    fake_lora.write_text("this is not a safetensors file")
    block(page, "LoRA file (.safetensors)").locator("input[type=file]").set_input_files(str(fake_lora))
    expect(block(page, "LoRA file (.safetensors)")).to_contain_text("not-a-lora", timeout=WAIT)
    field(page, "Adapter name").fill("broken-lora")
    submit_and_expect_warning(page, "Upload LoRA", re.compile(r"safetensors|LoRA file|header", re.I), "LoRA")
    assert_usable(page, ["LoRA file (.safetensors)", "Adapter name", "Trigger words"], "LoRA form")
    page.get_by_text("Upload a LoRA (admin)").click()

    page.get_by_text("Layout template from an image (admin)").click()
    submit_and_expect_warning(page, "Preview control map", "upload an image first", "Preview, no image")
    fake_png = tmp_path / "not-an-image.png"
    fake_png.write_text("this is text, not a PNG")
    block(page, "Layout image").locator("input[type=file]").set_input_files(str(fake_png))
    page.wait_for_timeout(1500)  # uploaded (the browser cannot draw it)
    submit_and_expect_warning(page, "Preview control map", "not a readable image", "Preview, a non-image")
    field(page, "Template name").fill("Bad Name")
    submit_and_expect_warning(page, "Save template", re.compile(r"name|image"), "Save template")
    assert field(page, "Template name").input_value() == "Bad Name"
    template_fields = ["Layout image", "Control map (preview)", "Template name", "Preprocessor"]
    assert_usable(page, template_fields, "template form")
    assert "UnidentifiedImageError" not in studio_server.log.read_text(), "no traceback in the server log"
    page.get_by_text("Layout template from an image (admin)").click()

    page.get_by_text("Members (admin)").click()
    submit_and_expect_warning(page, "Grant access", "pick a user from the list", "Grant, no user")
    submit_and_expect_warning(page, "Revoke access", "pick a user from the list", "Revoke, no user")
    assert_usable(page, ["Brand", "Your brands", "User"], "members form")
    expect(page.get_by_text("Style template:").first).to_be_visible()  # the details were not replaced
    shot(page, "admin-forms-after-bad-input")

    # members come from the list of users: mia and rex (added above) are offered, and granting works
    page.get_by_label("User", exact=True).filter(visible=True).first.click()
    for name in ("admin", "mia", "rex"):
        expect(page.get_by_role("option", name=name, exact=True)).to_be_visible(timeout=WAIT)
    page.get_by_role("option", name="mia", exact=True).click()
    button(page, "Grant access").click()
    expect(page.get_by_text("mia can now use lagoon.").first).to_be_visible(timeout=WAIT)
    page.get_by_label("User", exact=True).filter(visible=True).first.click()
    page.get_by_role("option", name="rex", exact=True).click()
    button(page, "Grant access").click()
    expect(page.get_by_text("rex can now use lagoon.").first).to_be_visible(timeout=WAIT)
    assert_no_error_state(page, "members granted")
    shot(page, "admin-forms-members")
    granted = rows(
        studio_server,
        "select u.username from brand_members m join users u on u.id = m.user_id "
        "join brands b on b.id = m.brand_id where b.slug = 'lagoon' order by 1",
    )
    assert granted == [("admin",), ("mia",), ("rex",)]


def test_lockout_is_told_and_unlock_lets_the_user_in_then_each_role_opens_on_its_tab(
    studio_server: RunningStudio, browser: Any
) -> None:
    for name, role in (("noa", "marketer"), ("ria", "reviewer")):
        made = studio_server.cli(
            "users", "add", name, "--role", role, "--password-stdin", stdin=f"{PASSWORD}\n"
        )
        assert made.returncode == 0, made.stderr
    granted = studio_server.cli("brands", "grant", "lagoon", "ria")
    assert granted.returncode == 0, granted.stderr
    page = browser.new_context(viewport=VIEWPORT).new_page()
    page.goto(studio_server.url + "/")

    def attempt(password: str) -> None:
        page.get_by_label("username").fill("noa")
        page.get_by_label("password").fill(password)
        with page.expect_response(lambda r: r.url.rstrip("/").endswith("/login"), timeout=WAIT) as answer:
            page.get_by_role("button", name="Login", exact=True).click()
        assert answer.value.status == 400

    for number in range(5):  # five wrong passwords lock the account
        attempt(f"wrong-{number}")
        expect(page.locator("p.creds")).to_have_text(re.compile("incorrect", re.I), timeout=WAIT)
    attempt(PASSWORD)  # then even the right one is refused, and the page says why and for how long
    expect(page.locator("p.creds")).to_have_text(
        re.compile(r"locked .*try again in 15 minutes"), timeout=WAIT
    )
    shot(page, "admin-forms-locked-out")
    attempt("wrong-again")  # the lock message stays the lock message while it lasts
    expect(page.locator("p.creds")).to_have_text(re.compile(r"locked .*try again in"), timeout=WAIT)
    page.get_by_label("username").fill("nobody-here")  # a name with no account reads as a wrong password
    attempt_other = page.get_by_label("password")
    attempt_other.fill("whatever-1")
    with page.expect_response(lambda r: r.url.rstrip("/").endswith("/login"), timeout=WAIT):
        page.get_by_role("button", name="Login", exact=True).click()
    expect(page.locator("p.creds")).to_have_text(re.compile("incorrect", re.I), timeout=WAIT)

    admin = sign_in(browser, studio_server.url, "admin", ADMIN_PASSWORD)
    admin.get_by_role("tab", name="Users").click()
    locked_row = admin.get_by_role("row").filter(has_text="noa")
    expect(locked_row).to_contain_text("UTC", timeout=WAIT)  # the locked-until column
    admin.get_by_role("gridcell", name="noa", exact=True).click()  # the row fills the form
    expect(field(admin, "Username")).to_have_value("noa", timeout=WAIT)
    button(admin, "Unlock").click()
    expect(admin.locator("#users-status")).to_contain_text("noa is unlocked", timeout=WAIT)
    expect(locked_row).not_to_contain_text("UTC", timeout=WAIT)  # the table was listed again
    assert_no_error_state(admin, "unlock")

    noa = sign_in(browser, studio_server.url, "noa", PASSWORD)  # a marketer with no brand
    expect(noa.locator("#studio-notice")).to_contain_text(
        "You have no brand yet: ask an admin to add you to one", timeout=WAIT
    )
    expect(noa.get_by_role("tab", name="Generate", selected=True)).to_be_visible()
    noa.get_by_role("tab", name="Brands").click()
    expect(noa.get_by_text("You have no brand yet").filter(visible=True).first).to_be_visible(timeout=WAIT)
    assert_no_error_state(noa, "a marketer with no brand")
    shot(noa, "admin-forms-marketer-without-brand")

    ria = sign_in(browser, studio_server.url, "ria", PASSWORD)
    expect(ria.get_by_role("tab", name="Review", selected=True)).to_be_visible(timeout=WAIT)
    expect(ria.locator("#studio-notice")).to_be_hidden()  # a member of lagoon: nothing to tell
    assert_no_error_state(ria, "a reviewer's landing")
    shot(ria, "admin-forms-reviewer-lands-on-review")
