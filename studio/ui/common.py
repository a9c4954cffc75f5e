"""Small helpers every tab uses: who is calling, and turning studio errors into messages for the browser."""

from __future__ import annotations

import html
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import gradio as gr

from studio.errors import DATABASE_ERROR_MESSAGE, StudioError, is_database_error
from studio.services.views import Actor
from studio.ui.text import escape_markdown

log = logging.getLogger("studio.ui")


def actor_of(request: gr.Request | None) -> Actor:
    """The logged-in user behind a Gradio event (services check what they may do)."""
    username = getattr(request, "username", None) if request is not None else None
    if not username:
        raise gr.Error("Please log in.")
    return Actor.user(str(username))


def user_message(error: BaseException) -> str:
    """What a user reads about ``error``: a studio error's own short message; for a database error a generic
    line (its text holds SQL and parameters), the whole error going to the server log."""
    if is_database_error(error):
        log.error("database error in a UI event", exc_info=error)
        return DATABASE_ERROR_MESSAGE
    return str(error)


def toast_error(error: BaseException) -> gr.Error:
    """``error`` as a toast (toasts render HTML: the message is escaped, user text in it stays text)."""
    return gr.Error(html.escape(user_message(error), quote=False), print_exception=False)


def markdown_message(error: BaseException) -> str:
    """``error``'s message for a Markdown status line, as literal text."""
    return escape_markdown(user_message(error))


@contextmanager
def shown_to_user() -> Iterator[None]:
    """Show a studio error as a short message in the browser (and as an error to API clients); a database
    error as a generic message (logged in full), never its SQL."""
    try:
        yield
    except StudioError as error:
        raise toast_error(error) from error
    except Exception as error:
        if is_database_error(error):
            raise toast_error(error) from None
        raise


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
