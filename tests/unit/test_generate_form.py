"""The Generate form's helpers: the progress line's format, a form into one request, messages by field."""

from __future__ import annotations

import pytest

from studio.errors import NotFoundError, ValidationError
from studio.ui.generate_form import FORM_FIELDS, field_messages, progress_line, read_form


def test_progress_reads_step_image_and_eta() -> None:
    # 4 images of 40 steps: step 52 of 160 is step 12 of image 2
    assert progress_line(52, 160, 4, 7.2) == "step 12/40 · image 2/4 · ETA 8 s"
    assert progress_line(40, 160, 4, 30.0) == "step 40/40 · image 1/4 · ETA 30 s"
    assert progress_line(1, 20, 1, None) == "step 1/20 · image 1/1 · ETA …"


def test_the_form_is_one_request_and_a_bad_seed_names_its_field() -> None:
    values = dict.fromkeys(FORM_FIELDS)
    values.update(brand="ember", prompt="a circle", steps=12.0, batch_size=2.0, seed="7", cfg=-3.0)
    values.update(lora_names=["ember-style"], lora_0=0.5)
    ask = read_form(values)
    assert (ask.steps, ask.batch_size, ask.seed, ask.cfg) == (12, 2, 7, -3.0)  # no clamp: the check says
    assert dict(ask.loras) == {"ember-style": 0.5}
    assert read_form({**values, "steps": 2.5}).steps == 2.5  # a fraction stays, for the check to name it
    with pytest.raises(ValidationError, match="seed: 'x' is not a whole number"):
        read_form({**values, "seed": "x"})


def test_each_message_goes_under_its_field() -> None:
    problems = [
        ValidationError("steps", "10000 is outside 1-150"),
        ValidationError("guidance_scale", "-3 is outside 1-30"),
        ValidationError("loras.ember-style", "2 is outside 0-1.5"),
        NotFoundError("brand 'x' not found"),
    ]
    messages = field_messages(problems, ["ember-style"])
    assert set(messages) == {"steps", "cfg", "lora_0", "brand"}
    assert messages["steps"] == "steps: 10000 is outside 1-150"
