"""A small word-level vocabulary saved as real CLIP tokenizer files.

CLIP's tokenizer is a byte-pair encoder: a word becomes characters (the last one marked ``</w>``) and merges
join pairs by rank. For each vocabulary word we add the chain of merges that builds it left to right, so every
word of the toy world is exactly one token; any other lowercase word still tokenizes, character by character.
"""

from __future__ import annotations

import string
from pathlib import Path

from .world import BACKGROUND_NAMES, COLOUR_NAMES, POSITION_NAMES, SHAPES

#: the caption window, start and end tokens included: a canonical caption (at most 13 tokens) plus a brand's
#: trigger word spelt letter by letter (up to 16 letters) fits (issue 18)
MAX_LENGTH = 32
BOS, EOS = "<|startoftext|>", "<|endoftext|>"

WORDS: tuple[str, ...] = (
    *COLOUR_NAMES,
    *SHAPES,
    *BACKGROUND_NAMES,
    *POSITION_NAMES,
    "a",
    "an",
    "on",
    "background",
    "the",
    "in",
    "at",
    "of",
    "with",
    "is",
    "and",
    ",",
    "shape",
    "image",
    "picture",
    "plain",
    "small",
    "big",
)


def _chain(word: str) -> list[str]:
    """Symbols of `word` as CLIP's BPE starts from them: characters, the last one with ``</w>``."""
    return [*word[:-1], word[-1] + "</w>"]


def build_vocab_and_merges(words: tuple[str, ...] = WORDS) -> tuple[dict[str, int], list[tuple[str, str]]]:
    tokens: list[str] = [BOS, EOS]
    seen = set(tokens)

    def add(tok: str) -> None:
        if tok not in seen:
            seen.add(tok)
            tokens.append(tok)

    for ch in string.ascii_lowercase + string.digits + ",.-'":
        add(ch)
        add(ch + "</w>")
    merges: list[tuple[str, str]] = []
    mseen: set[tuple[str, str]] = set()
    # Longer prefix merges first would break shorter words; instead order by chain depth, so every word's
    # first merge happens before any deeper merge. Conflicts (an inner pair of one word being another word's
    # first merge) are fixed below by promoting the word's merges.
    chains = {w: _chain(w) for w in words}
    depth = max(len(c) for c in chains.values())
    for d in range(1, depth):
        for syms in chains.values():
            if d < len(syms):
                left = "".join(syms[:d])
                pair = (left, syms[d])
                add(left)
                add(left + syms[d])
                if pair not in mseen:
                    mseen.add(pair)
                    merges.append(pair)
    for w in words:
        add(w + "</w>")
    return {t: i for i, t in enumerate(tokens)}, merges


def _bpe(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    syms = _chain(word)
    while len(syms) > 1:
        pairs = [
            (ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(syms, syms[1:], strict=False))
        ]
        rank, i = min(pairs)
        if rank == 1 << 30:
            break
        syms = [*syms[:i], syms[i] + syms[i + 1], *syms[i + 2 :]]
    return syms


def fixed_merges(words: tuple[str, ...] = WORDS) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocab and merges where every word in `words` is one BPE token (promote the merges of failing words)."""
    vocab, merges = build_vocab_and_merges(words)
    for _ in range(50):
        ranks = {m: i for i, m in enumerate(merges)}
        bad = [w for w in words if len(_bpe(w, ranks)) != 1]
        if not bad:
            return vocab, merges
        w = bad[0]
        syms = _chain(w)
        mine = [("".join(syms[:d]), syms[d]) for d in range(1, len(syms))]
        merges = mine + [m for m in merges if m not in mine]
    raise RuntimeError(f"could not make every word one token: {bad}")


def build_tokenizer(out_dir: str | Path | None = None, max_length: int = MAX_LENGTH):
    """A transformers CLIPTokenizer over the toy vocabulary, reading `max_length` tokens; saved to `out_dir`
    when given."""
    from transformers import CLIPTokenizer

    vocab, merges = fixed_merges()
    tok = CLIPTokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=EOS,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=EOS,
        model_max_length=max_length,
    )
    if out_dir is not None:
        tok.save_pretrained(str(out_dir))
    return tok


def check_tokenizer(tok) -> None:
    """Raise if some vocabulary word is not exactly one token."""
    bad = {}
    for w in WORDS:
        ids = tok(w, add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            bad[w] = tok.convert_ids_to_tokens(ids)
    if bad:
        raise RuntimeError(f"words that are not one token: {bad}")
