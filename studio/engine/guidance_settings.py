"""The settings of sampling-time guidance (no torch import: brands, forms and recipes check them cheaply).

The methods and their arithmetic are described in :mod:`studio.engine.guidance`. Ranges (a
ValidationError names the field, ``guidance.<name>``): ``rescale`` 0-1, ``apg_eta`` 0-1,
``apg_norm_threshold`` 0-100 (0 = no cut), ``apg_momentum`` -0.99-0.99, ``zero_init_steps`` 0-10,
``threshold_percentile`` 0.5-1, ``fdg_low_scale`` 0-30, ``start`` < ``stop`` within 0-1.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from studio.errors import ValidationError

METHODS: tuple[str, ...] = ("cfg", "apg", "cfg-zero-star", "threshold", "fdg")


@dataclass(frozen=True)
class Guidance:
    """How the conditional and unconditional predictions are combined (:mod:`studio.engine.guidance`)."""

    method: str = "cfg"
    rescale: float = 0.0
    apg_eta: float = 0.0
    apg_norm_threshold: float = 0.0
    apg_momentum: float = 0.0
    zero_init_steps: int = 0
    threshold_percentile: float = 0.995
    fdg_low_scale: float = 1.0
    start: float = 0.0
    stop: float = 1.0
    optimized_scale: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValidationError("guidance.method", f"{self.method!r} is not one of {', '.join(METHODS)}")
        checks = (
            ("rescale", self.rescale, 0.0, 1.0),
            ("apg_eta", self.apg_eta, 0.0, 1.0),
            ("apg_norm_threshold", self.apg_norm_threshold, 0.0, 100.0),
            ("apg_momentum", self.apg_momentum, -0.99, 0.99),
            ("zero_init_steps", self.zero_init_steps, 0, 10),
            ("threshold_percentile", self.threshold_percentile, 0.5, 1.0),
            ("fdg_low_scale", self.fdg_low_scale, 0.0, 30.0),
            ("start", self.start, 0.0, 1.0),
            ("stop", self.stop, 0.0, 1.0),
        )
        if isinstance(self.zero_init_steps, bool) or not isinstance(self.zero_init_steps, int):
            raise ValidationError(
                "guidance.zero_init_steps", f"{self.zero_init_steps!r} is not a whole number"
            )
        for name, value, low, high in checks:
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or not math.isfinite(value) or not low <= value <= high:
                raise ValidationError(f"guidance.{name}", f"{value!r} is outside {low:g}-{high:g}")
        if not isinstance(self.optimized_scale, bool):
            raise ValidationError("guidance.optimized_scale", f"{self.optimized_scale!r} is not a boolean")
        if self.start >= self.stop:
            raise ValidationError("guidance.stop", f"needs start < stop ({self.start:g}, {self.stop:g})")

    @property
    def is_plain(self) -> bool:
        """Plain CFG: the pipeline's own combination gives the same pixels, no hook is needed."""
        window = (self.start, self.stop) == (0.0, 1.0)
        return self.method == "cfg" and self.rescale == 0.0 and not self.optimized_scale and window

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Guidance:
        """From a recipe's, a brand's or a form's mapping of the fields (missing ones: the defaults)."""
        if data is not None and not isinstance(data, Mapping):
            raise ValidationError("guidance", "must be a table of settings")
        unknown = sorted(set(data or {}) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValidationError("guidance", f"unknown settings: {', '.join(map(str, unknown))}")
        return cls(**dict(data or {}))


PLAIN = Guidance()
