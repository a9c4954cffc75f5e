"""Issue 18, item 3: the embedded model reads a caption window of 32 tokens, so a canonical caption and a
brand's trigger word (spelt letter by letter: 10-11 tokens) fit, and its training taught it the whole window
(captions with a made-up word before or after them)."""

from __future__ import annotations

import json
import random

import numpy as np
from transformers import CLIPTokenizer

from studio.toyworld import MODEL_DIR, world
from studio.toyworld.train_data import make_captions
from studio.toyworld.vocab import MAX_LENGTH, WORDS

#: the longest caption form of the toy world, with the longest words
LONGEST = "a purple triangle at the center of a white background"


def test_the_shipped_tokenizer_and_text_encoder_read_32_tokens() -> None:
    tokenizer = CLIPTokenizer.from_pretrained(str(MODEL_DIR / "tokenizer"))
    encoder = json.loads((MODEL_DIR / "text_encoder" / "config.json").read_text())
    assert tokenizer.model_max_length == MAX_LENGTH >= 32
    assert encoder["max_position_embeddings"] == tokenizer.model_max_length


def test_a_canonical_caption_and_either_demo_trigger_word_fit_uncut() -> None:
    tokenizer = CLIPTokenizer.from_pretrained(str(MODEL_DIR / "tokenizer"))
    for trigger in ("emberstyle", "lagoonstyle"):
        for caption in (world.canonical_caption("purple", "triangle", "white", "center"), LONGEST):
            ids = tokenizer(f"{caption}, {trigger}")["input_ids"]
            assert 16 < len(ids) <= tokenizer.model_max_length, (caption, trigger, len(ids))  # 16 cut it


def test_the_shipped_build_was_trained_with_filler_words_in_the_whole_window() -> None:
    facts = json.loads((MODEL_DIR / "toyworld.json").read_text())
    assert "--filler-share 0.25" in facts["command"] and "--max-length 32" in facts["command"]
    from studio.toyworld.recipe import parse_args

    defaults = parse_args(["--out", "x"])  # the recipe's defaults are the shipped build's settings
    assert (defaults.max_length, defaults.filler_share) == (32, 0.25)
    assert (defaults.vae_steps, defaults.vae_lr, defaults.vae_crop) == (4000, 1e-3, 24)


def test_filler_words_stand_before_or_after_a_caption_like_a_trigger_word() -> None:
    rng = random.Random(3)
    caption = world.canonical_caption("red", "circle", "teal", "left")
    seen = {"before": 0, "after": 0}
    for _ in range(200):
        padded = world.with_filler_word(caption, rng)
        if padded.endswith(caption):
            word = padded[: -len(caption) - 2]
            seen["before"] += 1
        else:
            assert padded.startswith(caption + ", ")
            word = padded[len(caption) + 2 :]
            seen["after"] += 1
        assert word.isalpha() and word.islower() and 3 <= len(word) <= 16
    assert min(seen.values()) >= 60  # about half each way


def has_unknown_word(caption: str) -> bool:
    return any(word not in WORDS for word in caption.replace(",", " ").split())


def test_a_quarter_of_training_captions_carry_a_filler_word_and_all_fit_the_window() -> None:
    from studio.toyworld.vocab import build_tokenizer

    tokenizer = build_tokenizer()
    combos = world.training_combos()
    attrs = np.array(
        [
            [
                world.COLOUR_NAMES.index(c),
                world.SHAPES.index(s),
                world.BACKGROUND_NAMES.index(b),
                world.POSITION_NAMES.index(p),
            ]
            for c, s, b, p in combos
        ]
        * 7
    )
    padded = make_captions(attrs, random.Random(5), drop=0.1, filler_share=0.25)
    share = sum(map(has_unknown_word, padded)) / sum(1 for p in padded if p)
    assert 0.20 <= share <= 0.30, share
    assert not any(map(has_unknown_word, make_captions(attrs, random.Random(5), drop=0.1)))
    longest = max(len(tokenizer(p)["input_ids"]) for p in padded)
    assert 16 < longest <= MAX_LENGTH  # the tail of the window is trained, nothing is cut
