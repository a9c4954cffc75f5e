"""The Users tab (admin): accounts, roles, disabling and password resets. The service checks the role."""

from __future__ import annotations

from typing import Any

import gradio as gr

from studio.services.container import Services
from studio.services.views import UserView
from studio.ui.common import actor_of, shown_to_user

ROLES = ["marketer", "reviewer", "admin"]
HEADERS = ["username", "roles", "brands", "disabled", "locked until", "last login"]


def user_rows(users: list[UserView]) -> list[list[Any]]:
    def when(value: Any) -> str:
        return value.strftime("%Y-%m-%d %H:%M") if value else ""

    return [
        [
            u.username,
            ", ".join(u.roles),
            ", ".join(u.brands),
            "yes" if u.disabled else "",
            when(u.locked_until),
            when(u.last_login_at),
        ]
        for u in users
    ]


def render(services: Services) -> dict[str, Any]:
    """Build the tab; the app shell shows it to admins only (the service refuses everyone else anyway)."""
    users = services.users

    def list_users(request: gr.Request) -> list[list[Any]]:
        with shown_to_user():
            return user_rows(users.list_users(actor_of(request)))

    def add_user(username: str, password: str, roles: list[str], request: gr.Request) -> str:
        with shown_to_user():
            user = users.add_user(actor_of(request), (username or "").strip(), roles or [], password or "")
        return f"Added **{user.username}** ({', '.join(user.roles)})."

    def set_roles(username: str, roles: list[str], request: gr.Request) -> str:
        with shown_to_user():
            user = users.set_roles(actor_of(request), (username or "").strip(), roles or [])
        return f"**{user.username}** now has roles: {', '.join(user.roles)}."

    def disable(username: str, request: gr.Request) -> str:
        with shown_to_user():
            user = users.disable(actor_of(request), (username or "").strip())
        return f"**{user.username}** is disabled."

    def enable(username: str, request: gr.Request) -> str:
        with shown_to_user():
            user = users.enable(actor_of(request), (username or "").strip())
        return f"**{user.username}** is enabled."

    def reset_password(username: str, password: str, request: gr.Request) -> str:
        with shown_to_user():
            user = users.reset_password(actor_of(request), (username or "").strip(), password or "")
        return f"Password of **{user.username}** reset; lock cleared."

    table = gr.Dataframe(headers=HEADERS, label="Users", interactive=False)
    refresh = gr.Button("Refresh")
    status = gr.Markdown()
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

    listing = {"fn": list_users, "inputs": None, "outputs": table}
    refresh.click(**listing, api_name="list_users")
    add_btn.click(add_user, [username, password, roles], status, api_name="add_user").success(**listing)
    roles_btn.click(set_roles, [username, roles], status, api_name="set_roles").success(**listing)
    reset_btn.click(reset_password, [username, password], status, api_name="reset_password")
    disable_btn.click(disable, username, status, api_name="disable_user").success(**listing)
    enable_btn.click(enable, username, status, api_name="enable_user").success(**listing)
    return {"on_load": listing}
