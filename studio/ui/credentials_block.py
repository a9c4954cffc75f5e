"""The gallery's "Content Credentials" badge: whether the open image's file carries a C2PA manifest that
validates, with the manifest chain one click away (an accordion). One service call:
:meth:`studio.services.credentials.CredentialsService.check_image`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from studio.services.container import Services
from studio.services.credentials import ImageCredentials
from studio.ui.common import actor_of, shown_to_user


def badge_markdown(found: ImageCredentials) -> str:
    """The badge line: validates (trusted or not), invalid, or none."""
    checked = found.verification
    if not checked.has_credentials:
        return "**No Content Credentials** on this file"
    if not checked.valid:
        return "⚠ **Content Credentials: do not validate** (the file changed after signing?)"
    active = checked.manifests[0] if checked.manifests else None
    signer = f" · signed by {active.signer}" if active and active.signer else ""
    trusted = "" if checked.trusted else " (signer not among the trusted roots)"
    return f"✅ **Content Credentials** · AI-generated, validates{trusted}{signer}"


def details_markdown(found: ImageCredentials) -> str:
    """The manifest chain and validation, as ``studio verify`` prints them."""
    return "```\n" + "\n".join(found.lines) + "\n```"


def render_badge() -> tuple[gr.Markdown, gr.Markdown]:
    """The badge and, in a closed accordion, its details (call inside the gallery's detail column)."""
    badge = gr.Markdown(elem_id="gallery-credentials")
    with gr.Accordion("Content Credentials: details", open=False, elem_id="gallery-credentials-accordion"):
        details = gr.Markdown(elem_id="gallery-credentials-details")
    return badge, details


def badge_handler(services: Services) -> Callable[[int | None, gr.Request], list[Any]]:
    """``(image id, request) -> [badge, details]`` for the opened image."""

    def show(image_id: int | None, request: gr.Request) -> list[Any]:
        if image_id is None:
            return ["", ""]
        with shown_to_user():
            found = services.credentials.check_image(actor_of(request), image_id)
        return [badge_markdown(found), details_markdown(found)]

    return show
