"""Sampling-time guidance (studio.engine.guidance) on the tiny pipeline of every family, plain diffusers.

The hook must be exact where the method reduces to something diffusers does itself (APG with η = 1 and no
momentum or norm cut is plain CFG; ``rescale`` is diffusers' ``guidance_rescale``), and must change the image
where it does not."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from engine_fixtures import family_dir, fast_cpu  # noqa: F401

from studio.engine.guidance import Guidance, guided
from studio.errors import ValidationError

FAMILIES = ("sd1", "sdxl", "sd3", "flux")
_PIPES: dict[str, Any] = {}
SCALE = 5.0


@pytest.fixture(scope="module")
def pipes(tmp_path_factory: pytest.TempPathFactory, fast_cpu: None) -> dict[str, Any]:  # noqa: F811
    """The tiny pipelines, saved and loaded back as the engine loads them (built ones are not repeatable)."""
    from diffusers import AutoPipelineForText2Image

    for family in FAMILIES:
        pipe = AutoPipelineForText2Image.from_pretrained(family_dir(family, tmp_path_factory))
        pipe.set_progress_bar_config(disable=True)
        _PIPES[family] = pipe
    return _PIPES


def _run(family: str, guidance: Guidance | None = None, **extra: Any) -> np.ndarray:
    pipe = _PIPES[family]
    kwargs: dict[str, Any] = dict(
        prompt="a red circle",
        num_inference_steps=3,
        width=32,
        height=32,
        generator=torch.Generator().manual_seed(3),
        output_type="np",
    )
    if family == "flux":  # FLUX's CFG pair is true CFG, with a negative prompt
        kwargs.update(negative_prompt="blue", true_cfg_scale=SCALE, guidance_scale=1.0)
    else:
        kwargs.update(negative_prompt="blue", guidance_scale=SCALE)
    kwargs.update(extra)
    scale = kwargs.get("true_cfg_scale", kwargs["guidance_scale"]) if family == "flux" else SCALE
    with torch.no_grad(), guided(pipe, guidance or Guidance(), scale):
        return pipe(**kwargs).images[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_apg_that_keeps_the_parallel_part_is_plain_cfg(family: str, pipes: dict) -> None:
    plain = _run(family)
    same = _run(family, Guidance(method="apg", apg_eta=1.0))
    assert np.abs(plain - same).max() < 1e-3
    projected = _run(family, Guidance(method="apg", apg_eta=0.0, apg_momentum=-0.5))
    assert np.abs(plain - projected).max() > 1e-3


@pytest.mark.parametrize("family", FAMILIES)
def test_every_method_runs_and_differs_from_cfg(family: str, pipes: dict) -> None:
    plain = _run(family)
    for guidance in (
        Guidance(rescale=0.7),
        Guidance(method="apg", apg_norm_threshold=0.5),
        Guidance(method="cfg-zero-star", zero_init_steps=1),
        Guidance(method="threshold", threshold_percentile=0.9),
        Guidance(method="fdg", fdg_low_scale=1.0),
    ):
        image = _run(family, guidance)
        assert np.isfinite(image).all(), guidance
        assert np.abs(plain - image).max() > 1e-4, guidance


@pytest.mark.parametrize("family", ["sd1", "sdxl"])
def test_rescale_is_diffusers_guidance_rescale(family: str, pipes: dict) -> None:
    theirs = _run(family, guidance_rescale=0.7)
    ours = _run(family, Guidance(rescale=0.7))
    assert np.abs(theirs - ours).max() < 1e-3


def test_flux_without_a_negative_prompt_is_untouched(pipes: dict) -> None:
    """Distilled guidance makes one call per step: there is no pair to combine, nothing changes."""
    extra = dict(negative_prompt=None, true_cfg_scale=1.0, guidance_scale=3.5)
    plain = _run("flux", **extra)
    assert np.array_equal(plain, _run("flux", Guidance(method="apg"), **extra))


def test_the_hook_is_removed_after_the_block(pipes: dict) -> None:
    plain = _run("sd1")
    _run("sd1", Guidance(method="apg"))
    assert np.array_equal(plain, _run("sd1"))


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"method": "magic"}, "guidance.method"),
        ({"rescale": 1.5}, "guidance.rescale"),
        ({"apg_eta": -0.1}, "guidance.apg_eta"),
        ({"apg_momentum": 1.0}, "guidance.apg_momentum"),
        ({"apg_norm_threshold": float("nan")}, "guidance.apg_norm_threshold"),
        ({"zero_init_steps": 11}, "guidance.zero_init_steps"),
        ({"fdg_low_scale": -1.0}, "guidance.fdg_low_scale"),
    ],
)
def test_out_of_range_settings_name_their_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValidationError) as err:
        Guidance(**kwargs)
    assert err.value.field == field


def test_state_restarts_with_each_pipeline_call(pipes: dict) -> None:
    """APG's momentum belongs to one run: a second call in the block (another batch size) starts afresh."""
    pipe, guidance = _PIPES["sd1"], Guidance(method="apg", apg_momentum=-0.5)
    fresh = _run("sd1", guidance)
    kwargs = dict(num_inference_steps=3, width=32, height=32, guidance_scale=SCALE, output_type="np")
    with torch.no_grad(), guided(pipe, guidance, SCALE):
        pipe(prompt=["a red circle"] * 2, negative_prompt=["blue"] * 2, **kwargs)
        generator = torch.Generator().manual_seed(3)
        again = pipe(prompt="a red circle", negative_prompt="blue", generator=generator, **kwargs).images[0]
    assert np.abs(fresh - again).max() < 1e-5


def test_a_window_that_ends_early_leaves_the_last_steps_unguided(pipes: dict) -> None:
    """Guidance off after 2 of 3 steps differs from guidance throughout, and from none at all."""
    full = _run("sd1", Guidance(method="fdg", fdg_low_scale=2.0))
    windowed = _run("sd1", Guidance(method="fdg", fdg_low_scale=2.0, stop=0.7))
    unguided = _run("sd1", guidance_scale=1.0)
    assert np.abs(full - windowed).max() > 1e-4
    assert np.abs(unguided - windowed).max() > 1e-4


def test_window_and_scale_settings_are_checked() -> None:
    for kwargs, field in (
        ({"start": 0.5, "stop": 0.4}, "guidance.stop"),
        ({"stop": 1.5}, "guidance.stop"),
        ({"optimized_scale": "yes"}, "guidance.optimized_scale"),
        ({"zero_init_steps": 1.5}, "guidance.zero_init_steps"),
    ):
        with pytest.raises(ValidationError) as err:
            Guidance(**kwargs)
        assert err.value.field == field
    with pytest.raises(ValidationError) as err:
        Guidance.from_dict({"method": "fdg", "low": 1})
    assert err.value.field == "guidance"
    assert not Guidance(stop=0.8).is_plain and not Guidance(optimized_scale=True).is_plain
