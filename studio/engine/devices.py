"""Device and dtype choice: ``auto | cpu | cuda | mps`` → a torch device and the dtype to run it in."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from studio.errors import ModelError, ValidationError

DEVICE_SETTINGS = ("auto", "cpu", "cuda", "mps")


@dataclass(frozen=True)
class DeviceChoice:
    """Where and in which precision pipelines run.

    ``attention`` names the attention kernel used: diffusers uses PyTorch SDPA by default on every device.
    """

    device: str
    dtype: torch.dtype
    attention: str = "sdpa"

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")

    @property
    def is_gpu(self) -> bool:
        return self.device in ("cuda", "mps")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def choose_device(setting: str = "auto", *, mps_fp16: bool = True) -> DeviceChoice:
    """Resolve a device setting.

    cuda → bfloat16 when the GPU supports it, else float16 (SDPA attention); mps → float16 (float32 with
    ``mps_fp16=False``); cpu → float32.  ``auto`` picks cuda, then mps, then cpu.  Asking for a device that
    is not there is a :class:`ModelError`, not a silent fallback.
    """
    value = (setting or "auto").strip().lower()
    if value not in DEVICE_SETTINGS:
        raise ValidationError("device", f"must be one of {', '.join(DEVICE_SETTINGS)}, not {setting!r}")
    if value == "auto":
        if torch.cuda.is_available():
            value = "cuda"
        elif _mps_available():
            value = "mps"
        else:
            value = "cpu"
    if value == "cuda":
        if not torch.cuda.is_available():
            raise ModelError("device 'cuda' was asked for but no CUDA GPU is available")
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return DeviceChoice("cuda", dtype)
    if value == "mps":
        if not _mps_available():
            raise ModelError("device 'mps' was asked for but Apple MPS is not available")
        return DeviceChoice("mps", torch.float16 if mps_fp16 else torch.float32)
    return DeviceChoice("cpu", torch.float32)
