"""Small helpers every tab uses: who is calling, and turning studio errors into messages for the browser."""

from __future__ import annotations

import html
from collections.abc import Iterator
from contextlib import contextmanager

import gradio as gr

from studio.errors import StudioError
from studio.services.views import Actor


def actor_of(request: gr.Request | None) -> Actor:
    """The logged-in user behind a Gradio event (services check what they may do)."""
    username = getattr(request, "username", None) if request is not None else None
    if not username:
        raise gr.Error("Please log in.")
    return Actor.user(str(username))


@contextmanager
def shown_to_user() -> Iterator[None]:
    """Show a studio error as a short message in the browser (and as an error to API clients)."""
    try:
        yield
    except StudioError as error:
        raise gr.Error(str(error), print_exception=False) from error


def swatches_html(palette: tuple[str, ...] | list[str], size: int = 28) -> str:
    """Colour swatches with their hex codes, for a brand palette."""
    if not palette:
        return "<em>No palette</em>"
    cells = "".join(
        f'<div class="swatch" title="{html.escape(c)}">'
        f'<div style="width:{size}px;height:{size}px;background:{html.escape(c)};'
        f'border:1px solid #8886;border-radius:6px"></div>'
        f"<code>{html.escape(c)}</code></div>"
        for c in palette
    )
    return f'<div class="swatches" style="display:flex;gap:10px;flex-wrap:wrap">{cells}</div>'


def split_list(text: str | None) -> list[str]:
    """Comma- or newline-separated text → trimmed non-empty items."""
    if not text:
        return []
    return [item.strip() for item in text.replace("\n", ",").split(",") if item.strip()]
