"""How much of a prompt a model reads: token counts from the model's tokenizer files (no weights loaded).

Each text encoder of a pipeline reads a fixed number of tokens and drops the rest (CLIP: 77 with its start
and end tokens; the embedded toy model: 16; T5 in SD3 / FLUX: 256 / 512). :func:`count_tokens` counts the
prompt with every tokenizer folder of the model (``tokenizer``, ``tokenizer_2``, ``tokenizer_3``) and says
what no encoder reads (``cut``: the words past the longest window).

Example::

    count = count_tokens(Path("…/model"), "sd1", "a red circle on a white background")
    f"{count.tokens} / {count.limit}", count.cut   # "8 / 75", ""

:func:`known_words` lists the words an embedded model was trained on (None for other models).
"""

from __future__ import annotations

import importlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.errors import ModelError

TOKENIZER_FOLDERS = ("tokenizer", "tokenizer_2", "tokenizer_3")
#: tokens the T5 encoder reads in each family's pipeline (diffusers' ``max_sequence_length`` default)
T5_WINDOW = {"sd3": 256, "flux": 512}
_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
_tokenizers: dict[str, Any] = {}
_lock = threading.Lock()
_loading = threading.Lock()  # tokenizers are read one at a time (see _tokenizer)


@dataclass(frozen=True)
class EncoderCount:
    """One tokenizer's view: ``tokens`` in the prompt (start/end tokens left out), the ``limit`` it reads."""

    folder: str
    tokens: int
    limit: int

    @property
    def cut(self) -> bool:
        return self.tokens > self.limit


@dataclass(frozen=True)
class TokenCount:
    """A prompt against the model's longest-reading encoder: ``tokens`` / ``limit``; ``cut`` is the text
    past that window (empty when the whole prompt is read). ``encoders`` has every tokenizer's count."""

    tokens: int
    limit: int
    cut: str
    encoders: tuple[EncoderCount, ...]

    @property
    def truncated(self) -> bool:
        return bool(self.cut)


def import_tokenizers() -> None:
    """Import transformers' tokenizer classes now, in this thread: its lazy ``from transformers import
    AutoTokenizer`` fails in a thread that imports it while another one does (a web app that plans requests
    in parallel calls this once at start)."""
    with _loading:
        from transformers import AutoTokenizer  # noqa: F401


def _tokenizer(folder: Path) -> Any:
    key = str(folder)
    with _lock:
        found = _tokenizers.get(key)
    if found is not None:
        return found
    with _loading:  # one load at a time: transformers' lazy import fails in a second thread importing at once
        with _lock:
            found = _tokenizers.get(key)
        if found is not None:
            return found
        from transformers import AutoTokenizer

        try:
            loaded = AutoTokenizer.from_pretrained(key, local_files_only=True)
        except Exception as exc:  # missing files, an unknown tokenizer class…
            raise ModelError(f"cannot read the tokenizer in {folder} ({type(exc).__name__}: {exc})") from None
        with _lock:
            _tokenizers.setdefault(key, loaded)
        return loaded


def _window(tokenizer: Any, family: str) -> int:
    """Content tokens the encoder reads: the tokenizer's length less its start/end tokens (T5: the
    pipeline's sequence length, when the tokenizer itself names none)."""
    length = int(min(tokenizer.model_max_length, 1_000_000))
    if "T5" in type(tokenizer).__name__ and family in T5_WINDOW:
        length = min(length, T5_WINDOW[family])
    return max(0, length - tokenizer.num_special_tokens_to_add())


def _length(tokenizer: Any, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])


def _cut_at(tokenizer: Any, text: str, limit: int) -> str:
    """The end of ``text`` past ``limit`` tokens, at a word boundary (a word cut in two counts as cut)."""
    spans = [m.span() for m in re.finditer(r"\S+", text)]
    low, high = 0, len(spans)  # the most words whose prefix fits
    while low < high:
        middle = (low + high + 1) // 2
        if _length(tokenizer, text[: spans[middle - 1][1]]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[spans[low][0] :].strip() if low < len(spans) else ""


def count_tokens(model_path: str | Path, family: str, text: str) -> TokenCount:
    """Count ``text`` with every tokenizer of the diffusers folder ``model_path`` (see the module doc)."""
    folder = Path(model_path)
    counts: list[tuple[EncoderCount, Any]] = []
    for name in TOKENIZER_FOLDERS:
        if (folder / name).is_dir():
            tokenizer = _tokenizer(folder / name)
            counts.append(
                (EncoderCount(name, _length(tokenizer, text), _window(tokenizer, family)), tokenizer)
            )
    if not counts:
        raise ModelError(f"{folder.name}: no tokenizer folder found")
    widest, tokenizer = max(counts, key=lambda item: item[0].limit)
    cut = _cut_at(tokenizer, text, widest.limit) if widest.cut else ""
    return TokenCount(widest.tokens, widest.limit, cut, tuple(count for count, _ in counts))


def known_words(model_ref: str) -> tuple[str, ...] | None:
    """The words an embedded model (``embedded:NAME`` with a ``studio.NAME.vocab.WORDS`` list) knows."""
    if not model_ref.startswith("embedded:"):
        return None
    try:
        vocab = importlib.import_module(f"studio.{model_ref.partition(':')[2]}.vocab")
    except ImportError:
        return None
    words = getattr(vocab, "WORDS", None)
    return tuple(w for w in words if _WORD.fullmatch(w)) if words else None


def unknown_words(text: str, known: tuple[str, ...], allowed: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Words of ``text`` outside ``known`` (and ``allowed``, e.g. trigger words), each once, in order."""
    vocabulary = {w.lower() for w in (*known, *allowed)}
    found = (w for w in _WORD.findall(text.lower()) if w not in vocabulary)
    return tuple(dict.fromkeys(found))
