"""User text shown as text: prompts, comments, reasons, captions and names never become Markdown or HTML.

``gr.Markdown`` runs Markdown (images, links, autolinks, ``$$`` maths) and keeps some HTML; ``gr.HTML`` keeps
HTML; toasts (``gr.Error``) keep HTML. :func:`escape_markdown` writes every ASCII punctuation character that
Markdown, its autolinks, maths or HTML could read as syntax as a numeric character reference (``[`` →
``&#91;``; only ``, ; / % ? ^`` stay as they are): Markdown treats those as literal characters and never as
syntax, HTML shows them as the character, so ``![x](/logout)`` or ``<img onerror>`` show as typed and nothing
is fetched. Runs of white space (line breaks too) become one space, so the text stays inside the line or list
item it was put in. The same escaped text is safe in ``gr.Markdown`` and in ``gr.HTML`` (text and attribute
values).
"""

from __future__ import annotations

import re

_SYNTAX = re.compile(r"[!\"#$&'()*+\-.:<=>@\[\\\]_`{|}~]")


def escape_markdown(text: object) -> str:
    """``text`` as literal text for ``gr.Markdown`` or ``gr.HTML``: no Markdown, no HTML, one line."""
    flat = " ".join(str(text if text is not None else "").split())
    return _SYNTAX.sub(lambda found: f"&#{ord(found.group())};", flat)
