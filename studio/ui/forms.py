"""Forms whose errors never replace a component.

A handler that raises turns every output of its event into Gradio's red "Error" pill, until something else
updates it. For a form's buttons that is wrong: bad input is an everyday answer. :func:`keeps_form` makes a
studio error (bad input, a clash, something not found) a warning toast plus, where the form has one, a line
in its status box, and leaves every other output as it was (``gr.skip()``); the form keeps its values. A
refusal (:class:`PermissionDeniedError`) still fails the call: the UI never offers such a call, and API
clients and the security suite must see the refusal.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr
import PIL.Image

from studio.errors import PermissionDeniedError, StudioError, ValidationError, is_database_error
from studio.ui.common import markdown_message, toast_error

F = TypeVar("F", bound=Callable[..., Any])


def warning_line(message: str) -> str:
    """A status line for a refused form (Markdown)."""
    return f"⚠️ {message}"


def keeps_form(outputs: int = 1, status: int | None = None) -> Callable[[F], F]:
    """Decorate a form button's handler with ``outputs`` outputs: a studio error becomes a warning toast,
    the output at index ``status`` (if any) shows it as a line, and the other outputs stay as they were."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def handler(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except PermissionDeniedError as error:
                raise toast_error(error) from error
            except StudioError as error:
                gr.Warning(html.escape(str(error), quote=False))
                line = warning_line(markdown_message(error))
                if status is None:
                    return gr.skip()
                if outputs == 1:
                    return line
                return tuple(line if i == status else gr.skip() for i in range(outputs))
            except Exception as error:
                if is_database_error(error):
                    raise toast_error(error) from None
                raise

        return handler  # type: ignore[return-value]

    return wrap


def require(value: Any, field: str, message: str) -> Any:
    """``value`` if it is set, else a ValidationError naming ``field`` (shown as a form warning)."""
    if value in (None, "", [], ()):
        raise ValidationError(field, message)
    return value


def checked_image(**kwargs: Any) -> gr.Image:
    """A ``gr.Image(type="filepath")`` whose upload the service checks: a file Pillow cannot open (a text file
    named .png) reaches the handler as its path, and the service refuses it with a message, instead of
    failing in Gradio's preprocessing (a bare "Error" and a traceback in the log). The path is still one
    Gradio received and checked; only the decoding moves to the service. (An instance, not a subclass:
    Gradio writes a ``.pyi`` stub next to the module of every component subclass.)"""
    image = gr.Image(type="filepath", **kwargs)
    strict = image.preprocess

    def preprocess(payload: Any) -> Any:
        try:
            return strict(payload)
        except (PIL.UnidentifiedImageError, OSError, ValueError, SyntaxError):
            path = getattr(payload, "path", None)
            return str(path) if path else None

    image.preprocess = preprocess  # type: ignore[method-assign]
    return image
