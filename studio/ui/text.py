"""User text shown as text: prompts, comments, reasons, captions and names never become Markdown or HTML.

``gr.Markdown`` runs Markdown (images, links, autolinks, ``$$`` maths) and keeps some HTML; ``gr.HTML`` keeps
HTML; toasts (``gr.Error``) keep HTML. :func:`escape_markdown` writes the characters that Markdown, its
autolinks, maths or HTML could read as syntax as numeric character references (``[`` → ``&#91;``):
Markdown treats those as literal characters, HTML shows them as the character, so ``![x](/logout)`` or
``<img onerror>`` show as typed and nothing is fetched. Characters that are syntax only in company stay as
they are (``( ) . - : !`` without ``[`` ``]``, ``://`` or ``www.``; ``_`` inside a word), so messages and
prompts read the same to API clients. Runs of white space (line breaks too) become one space, so the text
stays inside the line or list item it was put in. The result is for text, in ``gr.Markdown`` or ``gr.HTML``
(attribute values need ``html.escape``).
"""

from __future__ import annotations

import re

#: always syntax: HTML (& < >), code, emphasis, links and images ([ ]), tables, strike, maths, escapes, emails
_ALWAYS = r"[&<>`*\[\]|~$\\@]"
#: syntax in company: an underscore at a word's edge, the colon of ``://``, the dot of ``www.``
_IN_COMPANY = r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])|:(?=//)|(?<=[wW][wW][wW])\."
#: syntax at the start of a line: a heading, a list item, a quote, a numbered item
_AT_START = re.compile(r"^(?:[#+\-=>]|\d+(?=[.)]))")
_SYNTAX = re.compile(f"{_ALWAYS}|{_IN_COMPANY}")


def _reference(found: re.Match[str]) -> str:
    return "".join(f"&#{ord(c)};" for c in found.group())


def escape_markdown(text: object) -> str:
    """``text`` as literal text for ``gr.Markdown`` or ``gr.HTML``: no Markdown, no HTML, one line."""
    flat = " ".join(str(text if text is not None else "").split())
    return _AT_START.sub(_reference, _SYNTAX.sub(_reference, flat), count=1)
