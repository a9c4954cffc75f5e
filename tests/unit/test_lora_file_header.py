"""Reading a LoRA file's header never trusts its length field: a made-up length is refused naming the file
(before: ``read`` of 2**64-1 bytes, a MemoryError, when the Brands tab was given a fake .safetensors)."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.engine.lora_files import read_header
from studio.errors import ValidationError


@pytest.mark.parametrize(
    "head",
    [b"\xff" * 8, (10**6).to_bytes(8, "little"), (0).to_bytes(8, "little")],
    ids=["huge", "past-end", "zero"],
)
def test_a_header_length_that_cannot_be_true_is_refused_naming_the_file(tmp_path: Path, head: bytes) -> None:
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(head + b"{}")
    with pytest.raises(ValidationError, match=r"fake\.safetensors.*invalid header length"):
        read_header(fake)


def test_a_real_header_is_read(tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "real.safetensors"
    save_file({"a.lora_down.weight": torch.zeros(2, 3)}, str(path), metadata={"ss_network_dim": "2"})
    header = read_header(path)
    assert header["a.lora_down.weight"]["shape"] == [2, 3]
    assert header["__metadata__"] == {"ss_network_dim": "2"}
