"""Banned terms, matched the way a person reads the prompt rather than byte by byte.

Both the prompt and each term are folded first (:func:`fold`): Unicode NFKC (fullwidth and other
compatibility letters become plain ones), invisible format characters removed (zero-width space and
joiners, soft hyphen, direction marks), accents dropped, Cyrillic and Greek letters that look Latin mapped
to the Latin letter, then case folded. A term then matches as whole words (letters or digits on neither
side: ``_``, ``-`` and ``.`` separate words), with a simple plural (``s``/``es``) on its last word, with
``_``, ``-``, ``.``, spaces or nothing between the words of a multi-word term, and with one separator between
every letter of a word (``c.o.m.p.e.t.i.t.o.r``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache

#: Cyrillic and Greek letters that look like a Latin letter (both cases; before case folding)
LOOKALIKES: dict[str, str] = {
    # Cyrillic capitals
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P", "С": "C", "Т": "T",
    "У": "Y", "Х": "X", "Ѕ": "S", "І": "I", "Ј": "J", "Ԛ": "Q", "Ԝ": "W", "Ү": "Y",
    # Cyrillic small letters
    "а": "a", "в": "b", "е": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t",
    "у": "y", "х": "x", "ѕ": "s", "і": "i", "ј": "j", "ԁ": "d", "һ": "h", "ԛ": "q", "ԝ": "w", "ү": "y",
    "ѵ": "v", "ӏ": "l", "ɡ": "g",
    # Greek capitals
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N", "Ο": "O",
    "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X",
    # Greek small letters
    "α": "a", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
    "γ": "y", "ω": "w",
}  # fmt: skip
_LOOKALIKE_TABLE = str.maketrans(LOOKALIKES)
#: what may stand between the words of a multi-word term, or between the letters of a spelled-out word
_SEPARATOR = r"[\s_.\-]"
#: not a letter or digit (``_`` counts as a separator, unlike in ``\w``)
_EDGE_BEFORE, _EDGE_AFTER = r"(?<![^\W_])", r"(?![^\W_])"


def fold(text: str) -> str:
    """``text`` as compared: NFKC, no format characters, no accents, look-alikes as Latin, casefolded."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    text = text.translate(_LOOKALIKE_TABLE)
    decomposed = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in decomposed if not unicodedata.combining(c))
    return unicodedata.normalize("NFKC", text).casefold()


@lru_cache(maxsize=4096)
def term_pattern(term: str) -> re.Pattern[str] | None:
    """The pattern a banned term matches (see the module docstring); None for a term with no letters."""
    words = [w for w in re.split(r"[^\w]+|_", fold(term)) if w]
    if not words:
        return None
    parts = [_word(w, last=i == len(words) - 1) for i, w in enumerate(words)]
    return re.compile(_EDGE_BEFORE + f"{_SEPARATOR}*".join(parts) + _EDGE_AFTER)


def _word(word: str, *, last: bool) -> str:
    """One word: as written, or with one separator between every letter; the last may take s/es."""
    plain = re.escape(word)
    spelled = f"{_SEPARATOR}".join(re.escape(c) for c in word) if len(word) > 1 else plain
    plural = f"(?:{_SEPARATOR}?e?s)?" if last else ""
    return f"(?:{plain}|{spelled}){plural}"


def banned_term_in(text: str, banned_terms: Iterable[str]) -> str | None:
    """The first of ``banned_terms`` that ``text`` contains (as the module docstring says), or None."""
    if not text:
        return None
    folded = fold(text)
    for term in banned_terms:
        pattern = term_pattern(term)
        if pattern is not None and pattern.search(folded):
            return term
    return None
