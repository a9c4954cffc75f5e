"""The prompt as sent: the brand's style template around the prompt as typed, with the trigger words of the
LoRAs used, and the brand's negative prompt merged with the user's.

:func:`assemble_prompt`: when the model's text encoder would not read all of it (CLIP: 75 tokens, the
embedded model: 14), the trigger words go first, so that they are never the part that is cut.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence


def merge_negative(brand_negative: str, user_negative: str) -> str:
    """The brand's negative terms, then the user's that are not already there (comma separated)."""
    terms: list[str] = []
    seen: set[str] = set()
    for text in (brand_negative, user_negative):
        for term in (part.strip() for part in (text or "").split(",")):
            if term and term.lower() not in seen:
                seen.add(term.lower())
                terms.append(term)
    return ", ".join(terms)


def _word(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-]){re.escape(term.strip())}(?![\w-])", re.IGNORECASE)


def apply_style(style_template: str, prompt: str, trigger_words: Sequence[str]) -> str:
    """The style template around the prompt, then the trigger words that are not in it yet."""
    text = (style_template or "{prompt}").replace("{prompt}", prompt.strip())
    if not prompt.strip():  # the template alone (a counter's preview): no dangling comma
        text = text.strip(" ,")
    lowered = text.lower()
    missing = [w for w in trigger_words if w.strip() and w.lower() not in lowered]
    return ", ".join([text, *missing]) if missing else text


def assemble_prompt(
    style_template: str,
    prompt: str,
    trigger_words: Sequence[str],
    brand_words: Sequence[str] = (),
    fits: Callable[[str], bool] | None = None,
) -> str:
    """The prompt as sent: the brand's order (:func:`apply_style`) when the model reads all of it
    (``fits(text)``), else the trigger words first, so that they are never the part that is cut.

    First: ``trigger_words`` (of the LoRAs used), and ``brand_words`` (every trigger word of the brand) that
    the template or the prompt has; each is taken out where it stood, so it is sent once:
    ``"{prompt}, emberstyle"`` with ``"a circle"`` → ``"emberstyle, a circle"``. ``fits=None`` always puts
    them first. (Not always first: a model trained on short captions with the trigger word last, like the
    embedded one, draws noise when its 14 tokens start with a 10-letter trigger word.)
    """
    styled = apply_style(style_template, prompt, trigger_words)
    if fits is not None and fits(styled):
        return styled
    text = (style_template or "{prompt}").replace("{prompt}", prompt.strip())
    first: dict[str, str] = {}
    for term in trigger_words:
        if term.strip():
            first.setdefault(term.strip().lower(), term.strip())
    for term in brand_words:
        if term.strip() and _word(term).search(text):
            first.setdefault(term.strip().lower(), term.strip())
    if not first:
        return styled
    for term in first.values():
        text = _word(term).sub("", text)
    text = re.sub(r"\s*,(\s*,)+", ",", text)  # the commas a removed word leaves
    text = re.sub(r"\s{2,}", " ", text).strip(" ,")
    return ", ".join([*first.values(), text]) if text else ", ".join(first.values())
