"""Samplers by the names users know, built ``from_config`` of the model's own scheduler config.

Building from the base config keeps the model's prediction type, beta schedule, zero-SNR rescaling and
timestep spacing (a v-prediction model stays v-prediction whatever sampler is picked).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from diffusers import (
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerAncestralDiscreteScheduler,
    EulerDiscreteScheduler,
    FlowMatchEulerDiscreteScheduler,
    LCMScheduler,
    UniPCMultistepScheduler,
)
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from studio.errors import ValidationError

#: Every sampler name the studio knows, in display order.
SAMPLERS: tuple[str, ...] = ("Euler", "Euler a", "DPM++ 2M", "DPM++ 2M Karras", "DDIM", "UniPC", "LCM")

# name -> (scheduler class, overrides applied on top of the base config)
_DIFFUSION: dict[str, tuple[type[SchedulerMixin], dict[str, Any]]] = {
    "Euler": (EulerDiscreteScheduler, {}),
    "Euler a": (EulerAncestralDiscreteScheduler, {}),
    "DPM++ 2M": (DPMSolverMultistepScheduler, {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "DPM++ 2M Karras": (
        DPMSolverMultistepScheduler,
        {"algorithm_type": "dpmsolver++", "solver_order": 2, "use_karras_sigmas": True},
    ),
    "DDIM": (DDIMScheduler, {}),
    "UniPC": (UniPCMultistepScheduler, {}),
    "LCM": (LCMScheduler, {}),
}
# Defaults of other schedulers that would change a model's behaviour when its base config does not say.
_SAFE_DEFAULTS: dict[str, Any] = {"clip_sample": False, "set_alpha_to_one": False}
_FLOW_SAMPLERS: dict[str, type[SchedulerMixin]] = {"Euler": FlowMatchEulerDiscreteScheduler}


def is_flow_matching(base_config: Mapping[str, Any]) -> bool:
    """Whether the model is a flow-matching model (SD3, FLUX) rather than a noise-prediction one."""
    return str(base_config.get("_class_name", "")).startswith("FlowMatch")


def supports_lcm(base_config: Mapping[str, Any]) -> bool:
    """LCM needs a latent-consistency-distilled model, which ships an LCMScheduler config."""
    return base_config.get("_class_name") == "LCMScheduler"


def available_samplers(base_config: Mapping[str, Any]) -> list[str]:
    """The sampler names this model can use."""
    if is_flow_matching(base_config):
        return list(_FLOW_SAMPLERS)
    return [name for name in SAMPLERS if name != "LCM" or supports_lcm(base_config)]


def default_sampler(base_config: Mapping[str, Any]) -> str:
    """The sampler matching the model's own scheduler, else Euler."""
    class_name = base_config.get("_class_name")
    for name in available_samplers(base_config):
        if name in ("Euler", "DDIM", "UniPC", "LCM", "Euler a"):
            cls = _FLOW_SAMPLERS.get(name) if is_flow_matching(base_config) else _DIFFUSION[name][0]
            if cls is not None and cls.__name__ == class_name:
                return name
    return "Euler"


def canonical_name(name: str) -> str:
    """The canonical spelling of a sampler name (case-insensitive), or a ValidationError listing them."""
    wanted = " ".join(str(name).split()).lower()
    for known in SAMPLERS:
        if known.lower() == wanted:
            return known
    raise ValidationError("sampler", f"unknown sampler {name!r}; valid names: {', '.join(SAMPLERS)}")


def check_sampler(name: str, base_config: Mapping[str, Any]) -> str:
    """The canonical name if the model can use sampler ``name``; else a ValidationError saying why."""
    return _resolve(name, base_config)[0]


def make_scheduler(name: str, base_config: Mapping[str, Any]) -> SchedulerMixin:
    """A fresh scheduler for ``name`` built from the model's scheduler config.

    Raises ValidationError for unknown names and for samplers the model cannot use (LCM on a model that is
    not LCM-distilled; noise-prediction samplers on flow-matching models).
    """
    _, cls, config = _resolve(name, base_config)
    return cls.from_config(config)


def _resolve(name: str, base_config: Mapping[str, Any]) -> tuple[str, type[SchedulerMixin], dict[str, Any]]:
    canonical = canonical_name(name)
    config = dict(base_config)
    if is_flow_matching(config):
        flow_cls = _FLOW_SAMPLERS.get(canonical)
        if flow_cls is None:
            raise ValidationError(
                "sampler",
                f"{canonical!r} does not work with this flow-matching model; "
                f"valid names: {', '.join(_FLOW_SAMPLERS)}",
            )
        return canonical, flow_cls, config
    if canonical == "LCM" and not supports_lcm(config):
        raise ValidationError(
            "sampler",
            "LCM needs a latent-consistency (LCM-distilled) model; this model's scheduler is "
            f"{config.get('_class_name', 'unknown')}. Valid names: {', '.join(available_samplers(config))}",
        )
    cls, overrides = _DIFFUSION[canonical]
    for key, value in _SAFE_DEFAULTS.items():
        config.setdefault(key, value)
    config.update(overrides)
    return canonical, cls, config
