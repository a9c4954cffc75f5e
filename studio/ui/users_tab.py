"""The Users tab (admin): accounts, roles, disabling, unlocking and password resets. The service checks the
role. Every change lists the users again; a bad entry is a warning beside the buttons, the form keeps it.
A reset, a disable and a role taken away end the user's sessions (see :mod:`studio.ui.sessions`); the
"locked until" column is the latest lock of the name from any client address."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import gradio as gr

from studio.services.container import Services
from studio.services.views import UserView
from studio.ui.common import actor_of, shown_to_user
from studio.ui.forms import keeps_form

ROLES = ["marketer", "reviewer", "admin"]
HEADERS = ["username", "roles", "brands", "disabled", "locked until", "last login"]
ONLY_YOU = (
    "Only you so far: add a user below (username, password, roles), then give them brands in "
    "**Brands → Members**."
)


def user_rows(users: list[UserView]) -> list[list[Any]]:
    def when(value: Any) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value else ""

    now = datetime.now(UTC)
    return [
        [
            u.username,
            ", ".join(u.roles),
            ", ".join(u.brands),
            "yes" if u.disabled else "",
            when(u.locked_until) + " UTC" if u.locked_until and u.locked_until > now else "",
            when(u.last_login_at),
        ]
        for u in users
    ]


def render(services: Services) -> dict[str, Any]:
    """Build the tab; the app shell shows it to admins only (the service refuses everyone else anyway)."""
    users = services.users

    def list_users(request: gr.Request) -> tuple[list[list[Any]], Any]:
        with shown_to_user():
            found = users.list_users(actor_of(request))
        return user_rows(found), gr.update(value=ONLY_YOU if len(found) <= 1 else "", visible=len(found) <= 1)

    def name_of(username: str | None) -> str:
        return (username or "").strip().lower()

    @keeps_form(status=0)
    def add_user(username: str, password: str, roles: list[str], request: gr.Request) -> str:
        user = users.add_user(actor_of(request), name_of(username), roles or [], password or "")
        added = f"Added **{user.username}** ({', '.join(user.roles)})."
        return f"{added} Give them brands in **Brands → Members**."

    @keeps_form(status=0)
    def set_roles(username: str, roles: list[str], request: gr.Request) -> str:
        user = users.set_roles(actor_of(request), name_of(username), roles or [])
        return f"**{user.username}** now has roles: {', '.join(user.roles)} (a role taken away signs out)."

    @keeps_form(status=0)
    def disable(username: str, request: gr.Request) -> str:
        user = users.disable(actor_of(request), name_of(username))
        return f"**{user.username}** is disabled (and signed out everywhere)."

    @keeps_form(status=0)
    def enable(username: str, request: gr.Request) -> str:
        user = users.enable(actor_of(request), name_of(username))
        return f"**{user.username}** is enabled (and not locked)."

    @keeps_form(status=0)
    def unlock(username: str, request: gr.Request) -> str:
        user = users.unlock(actor_of(request), name_of(username))
        return f"**{user.username}** is unlocked: they can sign in again."

    @keeps_form(status=0)
    def reset_password(username: str, password: str, request: gr.Request) -> str:
        user = users.reset_password(actor_of(request), name_of(username), password or "")
        return f"Password of **{user.username}** reset; lock cleared; signed out everywhere."

    def pick_user(evt: gr.SelectData) -> tuple[Any, Any]:
        """A click on a row fills the username (and roles) for the buttons below."""
        row = list(evt.row_value or [])
        if not row:
            return gr.skip(), gr.skip()
        roles = [r.strip() for r in str(row[1] or "").split(",") if r.strip()]
        return row[0], roles

    table = gr.Dataframe(headers=HEADERS, label="Users", interactive=False)
    empty = gr.Markdown(visible=False)
    refresh = gr.Button("Refresh")
    gr.Markdown("Click a user in the table to fill in their name, or type a new one.")
    with gr.Row():
        username = gr.Textbox(label="Username", info="lowercase letters, digits, dot, dash, underscore")
        password = gr.Textbox(label="Password", type="password", info="at least 8 characters")
    roles = gr.CheckboxGroup(ROLES, label="Roles", value=["marketer"])
    with gr.Row():
        add_btn = gr.Button("Add user", variant="primary")
        roles_btn = gr.Button("Set roles")
        reset_btn = gr.Button("Reset password")
        disable_btn = gr.Button("Disable")
        enable_btn = gr.Button("Enable")
        unlock_btn = gr.Button("Unlock")
    status = gr.Markdown(elem_id="users-status")

    listing = {"fn": list_users, "inputs": None, "outputs": [table, empty]}
    refresh.click(**listing, api_name="list_users")
    table.select(pick_user, None, [username, roles], api_name="pick_user")
    add_btn.click(add_user, [username, password, roles], status, api_name="add_user").success(**listing)
    roles_btn.click(set_roles, [username, roles], status, api_name="set_roles").success(**listing)
    reset_btn.click(reset_password, [username, password], status, api_name="reset_password").success(
        **listing
    )
    disable_btn.click(disable, username, status, api_name="disable_user").success(**listing)
    enable_btn.click(enable, username, status, api_name="enable_user").success(**listing)
    unlock_btn.click(unlock, username, status, api_name="unlock_user").success(**listing)
    return {"on_load": listing}
