"""Samplers by user-facing names, built from the model's scheduler config."""

from __future__ import annotations

import pytest

from studio.engine.samplers import SAMPLERS, available_samplers, default_sampler, make_scheduler
from studio.errors import ValidationError

VPRED = {
    "_class_name": "EulerDiscreteScheduler",
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "num_train_timesteps": 1000,
    "prediction_type": "v_prediction",
    "rescale_betas_zero_snr": True,
    "timestep_spacing": "trailing",
    "steps_offset": 1,
}


@pytest.mark.parametrize("name", [n for n in SAMPLERS if n != "LCM"])
def test_every_sampler_keeps_the_model_settings(name: str) -> None:
    scheduler = make_scheduler(name, VPRED)
    assert scheduler.config.prediction_type == "v_prediction"
    assert scheduler.config.timestep_spacing == "trailing"
    if "rescale_betas_zero_snr" in scheduler.config:
        assert scheduler.config.rescale_betas_zero_snr is True
    scheduler.set_timesteps(4)
    assert len(scheduler.timesteps) == 4


def test_specific_classes_and_options() -> None:
    assert type(make_scheduler("Euler a", VPRED)).__name__ == "EulerAncestralDiscreteScheduler"
    karras = make_scheduler("dpm++ 2m karras", VPRED)  # case-insensitive
    assert karras.config.use_karras_sigmas is True
    assert karras.config.algorithm_type == "dpmsolver++"
    assert make_scheduler("DDIM", VPRED).config.clip_sample is False
    assert default_sampler(VPRED) == "Euler"


def test_unknown_sampler_lists_valid_names() -> None:
    with pytest.raises(ValidationError) as info:
        make_scheduler("Heun++ 9000", VPRED)
    assert info.value.field == "sampler"
    for name in SAMPLERS:
        assert name in str(info.value)


def test_lcm_only_for_lcm_models() -> None:
    with pytest.raises(ValidationError, match="LCM needs a latent-consistency"):
        make_scheduler("LCM", VPRED)
    assert "LCM" not in available_samplers(VPRED)
    lcm = dict(VPRED, _class_name="LCMScheduler")
    assert type(make_scheduler("LCM", lcm)).__name__ == "LCMScheduler"
    assert "LCM" in available_samplers(lcm)


def test_flow_matching_models_offer_euler_only() -> None:
    flow = {"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0, "num_train_timesteps": 1000}
    assert available_samplers(flow) == ["Euler"]
    assert type(make_scheduler("Euler", flow)).__name__ == "FlowMatchEulerDiscreteScheduler"
    assert make_scheduler("Euler", flow).config.shift == 3.0
    with pytest.raises(ValidationError, match="flow-matching"):
        make_scheduler("DPM++ 2M", flow)
