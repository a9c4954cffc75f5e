"""Issue 18, item 3, the recipe side: ``train --max-length 32 --filler-share 0.25`` builds a model whose
caption window holds a canonical caption and a brand's trigger word (spelt letter by letter: 10-11 tokens),
and whose training teaches it the whole window (captions with a made-up word before or after them). The
shipped build still reads 16 (see studio/toyworld/README.md)."""

from __future__ import annotations

import random

import numpy as np

from studio.toyworld import world
from studio.toyworld.train import make_captions
from studio.toyworld.vocab import WORDS

#: the longest caption form of the toy world, with the longest words
LONGEST = "a purple triangle at the center of a white background"


def test_a_32_token_build_holds_a_canonical_caption_and_either_demo_trigger_word() -> None:
    from studio.toyworld.models import make_text_encoder
    from studio.toyworld.vocab import build_tokenizer

    tokenizer = build_tokenizer(max_length=32)  # train --max-length 32
    encoder = make_text_encoder(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id, 32)
    assert tokenizer.model_max_length == encoder.config.max_position_embeddings == 32
    for trigger in ("emberstyle", "lagoonstyle"):
        for caption in (world.canonical_caption("purple", "triangle", "white", "center"), LONGEST):
            ids = tokenizer(f"{caption}, {trigger}")["input_ids"]
            assert 16 < len(ids) <= 32, (caption, trigger, len(ids))  # cut by a 16-token window, not by 32


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

    tokenizer = build_tokenizer(max_length=32)
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
    assert 16 < longest <= 32  # the tail of a 32-token window is trained, nothing is cut
