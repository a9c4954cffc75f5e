"""Change my password: any signed-in user, with their current password (the service checks it as a sign-in
is checked: a wrong one counts towards the lockout from the caller's address). Every session of the account
ends, this one too: the user signs in again with the new password."""

from __future__ import annotations

from typing import Any

import gradio as gr

from studio.services.container import Services
from studio.services.users import MIN_PASSWORD
from studio.ui.common import actor_of
from studio.ui.forms import keeps_form
from studio.ui.sessions import request_client

CHANGED = "Password changed. Your sessions have ended: reload the page and sign in with the new password."


def render(services: Services) -> None:
    """A closed accordion under the header; its one event is ``change_password``."""
    users = services.users

    @keeps_form(outputs=3, status=0)
    def change_password(current: str, new: str, request: gr.Request) -> tuple[Any, Any, Any]:
        users.change_own_password(actor_of(request), current or "", new or "", request_client(request))
        return CHANGED, "", ""

    with gr.Accordion("Change my password", open=False):
        with gr.Row():
            current = gr.Textbox(label="Current password", type="password")
            new = gr.Textbox(
                label="New password", type="password", info=f"at least {MIN_PASSWORD} characters"
            )
        button = gr.Button("Change password", size="sm")
        status = gr.Markdown(elem_id="account-status")
    button.click(change_password, [current, new], [status, current, new], api_name="change_password")
