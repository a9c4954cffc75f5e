"""Device and dtype choice."""

from __future__ import annotations

import pytest
import torch

from studio.engine.devices import choose_device
from studio.errors import ModelError, ValidationError


def test_cpu_is_float32() -> None:
    choice = choose_device("cpu")
    assert (choice.device, choice.dtype, choice.attention) == ("cpu", torch.float32, "sdpa")
    assert not choice.is_gpu


def test_bad_setting() -> None:
    with pytest.raises(ValidationError, match="auto, cpu, cuda, mps"):
        choose_device("tpu")


def test_missing_gpu_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelError, match="no CUDA GPU"):
        choose_device("cuda")


def test_auto_without_gpu_is_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("studio.engine.devices._mps_available", lambda: False)
    assert choose_device("auto").device == "cpu"


@pytest.mark.parametrize(("bf16", "dtype"), [(True, torch.bfloat16), (False, torch.float16)])
def test_cuda_dtype(monkeypatch: pytest.MonkeyPatch, bf16: bool, dtype: torch.dtype) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: bf16)
    choice = choose_device("auto")
    assert (choice.device, choice.dtype) == ("cuda", dtype)


def test_mps_dtype(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("studio.engine.devices._mps_available", lambda: True)
    assert choose_device("mps").dtype == torch.float16
    assert choose_device("mps", mps_fp16=False).dtype == torch.float32
