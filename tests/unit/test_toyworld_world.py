"""The toy world: deterministic scenes, caption forms, and classifiers that read drawn images 100% right."""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest

from studio.toyworld import classify, world
from studio.toyworld.vocab import WORDS


def test_scenes_and_pixels_are_deterministic():
    assert world.scene_for_seed(123) == world.scene_for_seed(123)
    a = world.render_array(world.scene_for_seed(123))
    b = world.render_array(world.scene_for_seed(123))
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert (a == b).all()
    scenes = {world.scene_for_seed(i) for i in range(50)}
    assert len(scenes) > 40


def test_canonical_caption_form():
    s = world.Scene("red", "circle", "white", "left")
    assert s.caption() == "a red circle on a white background, left"
    assert world.canonical_caption("red", "circle", "white", "left") == s.caption()
    assert world.CAPTION_FORMS[0][0] == world.CANONICAL


def test_caption_variations_use_only_vocabulary_words():
    rng = random.Random(0)
    seen_forms = set()
    for i in range(400):
        scene = world.scene_for_seed(i)
        cap = world.random_caption(scene, rng)
        seen_forms.add(cap.replace(scene.colour, "{c}").replace(scene.background, "{b}"))
        for word in cap.replace(",", " , ").split():
            assert word in WORDS, (word, cap)
    assert len(seen_forms) > 10
    # some forms leave the background and/or the position open
    forms = [f for f, _ in world.CAPTION_FORMS]
    assert any("{background}" not in f and "{colour}" in f for f in forms)
    assert any("{position}" not in f and "{colour}" in f for f in forms)


def test_held_out_split_is_balanced_and_disjoint():
    held, train = world.held_out_combos(), world.training_combos()
    assert len(held) == 60 and len(train) == 300
    assert not set(held) & set(train)
    for i, names in enumerate(
        (world.COLOUR_NAMES, world.SHAPES, world.BACKGROUND_NAMES, world.POSITION_NAMES)
    ):
        assert {c[i] for c in held} == set(names)
    assert all(not world.is_held_out(world.scene_for_seed(i).combo) for i in range(300))


def test_classifiers_are_right_on_every_drawn_combination():
    rng = random.Random(1)
    for k, combo in enumerate(world.all_combos()):
        scene = world.Scene(*combo, size=world.SIZES[k % 3], dx=rng.randint(-2, 2), dy=rng.randint(-2, 2))
        r = classify.classify(world.render(scene))
        assert (r.colour, r.shape, r.background, r.position) == combo, (scene, r)
        cx, cy = scene.centroid
        assert abs(r.centroid[0] - cx) < 1.0 and abs(r.centroid[1] - cy) < 1.0


def test_classifier_reports_no_shape_on_a_blank_image():
    blank = np.full((64, 64, 3), 128, np.uint8)
    r = classify.classify(blank)
    assert r.background == "gray" and r.shape is None and r.position is None


def test_edge_map_outlines_the_shape():
    scene = world.Scene("blue", "square", "white", "right", size=10)
    edges = np.asarray(world.edge_map(scene))
    assert edges.shape == (64, 64, 3) and set(np.unique(edges)) <= {0, 255}
    ys, xs = np.nonzero(edges[..., 0])
    assert len(xs) > 40
    assert abs(xs.mean() - scene.centroid[0]) < 2 and abs(ys.mean() - scene.centroid[1]) < 2


def test_tokenizer_round_trips_with_one_token_per_word(tmp_path):
    pytest.importorskip("transformers")
    from transformers import CLIPTokenizer

    from studio.toyworld.vocab import MAX_LENGTH, build_tokenizer, check_tokenizer

    build_tokenizer(tmp_path)
    assert (tmp_path / "tokenizer.json").exists()
    tok = CLIPTokenizer.from_pretrained(str(tmp_path))
    check_tokenizer(tok)
    assert tok.model_max_length == MAX_LENGTH
    ids = tok("a red circle on a white background, left").input_ids
    assert len(ids) == 11  # 9 words + "," + start/end
    assert len(tok("orange triangle").input_ids) == 4


def test_importing_the_package_is_cheap_and_reports_the_model():
    code = (
        "import sys, studio.toyworld as t; info = t.model_info(); "
        "assert 'torch' not in sys.modules and 'diffusers' not in sys.modules; "
        "assert info['id'] == 'embedded:toyworld' and info['family'] == 'sd' and info['size'] == 64; "
        "assert 'teal' in info['knows']['backgrounds']; print(info['params'])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
