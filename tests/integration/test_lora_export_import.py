"""LoRAs in and out: ``studio loras export/import`` and the Brands tab, on the tiny model with real SQLite.

* export → import → the same pixels (kohya through the real CLI in a subprocess; diffusers and peft through
  the service);
* the kohya export carries the metadata A1111, ComfyUI and Civitai read;
* a file made for another family, or with layers of other sizes, is refused naming the reason, and nothing
  is written;
* the Brands tab's download, through a live server with ``gradio_client``, gives a file that loads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import DEMO_BRANDS, files_under, snapshot
from live_server import DEMO_PASSWORD, demo_server_fixture  # noqa: F401 (the demo_server fixture)
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from studio.engine.a1111 import autov3
from studio.errors import NotFoundError, PermissionDeniedError, ValidationError
from studio.services.generation import GenerateInput
from studio.services.views import SYSTEM, Actor

REPO = Path(__file__).resolve().parents[2]
STUDIO = [sys.executable, "-m", "studio.cli"]
PASSWORD = "a-long-enough-password-1"


def run(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        STUDIO + args, cwd=REPO, env=env, input=stdin, capture_output=True, text=True, timeout=300
    )


def pixels(path: str | Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _world(services: Any) -> None:
    services.users.add_user(SYSTEM, "ada", ["admin"], PASSWORD)
    services.users.add_user(SYSTEM, "mia", ["marketer"], PASSWORD)
    services.brands.sync(SYSTEM, DEMO_BRANDS)
    services.brands.grant(SYSTEM, "ember", "mia")


def _generate(services: Any, weights: dict[str, float]) -> np.ndarray:
    request = GenerateInput(brand="ember", prompt="a red circle", seed=5, steps=4, loras=weights)
    return pixels(services.generation.generate(SYSTEM, request).images[0].path)


# ----------------------------------------------------------------------------------------------- CLI


@pytest.mark.slow  # 32 s of CLI processes; the services test checks the same pixels in the default run
def test_cli_kohya_round_trip_gives_the_same_pixels(cli_env: dict[str, str], studio_home: Path) -> None:
    assert run(["db", "upgrade"], cli_env).returncode == 0
    assert (
        run(
            ["users", "add", "ada", "--role", "admin", "--password-stdin"], cli_env, PASSWORD + "\n"
        ).returncode
        == 0
    )
    assert run(["brands", "sync", "brands/"], cli_env).returncode == 0
    out = studio_home / "ember-style.safetensors"

    exported = run(
        ["loras", "export", "ember", "ember-style", "--format", "kohya", "--out", str(out)], cli_env
    )
    assert exported.returncode == 0, exported.stderr
    assert "ember/ember-style version 1 (kohya)" in exported.stdout
    assert all(key.startswith("lora_unet_") for key in load_file(str(out)))

    imported = run(["loras", "import", "ember", "ember-kohya", str(out)], cli_env)
    assert imported.returncode == 0, imported.stderr
    assert "ember/ember-kohya: version 1 active" in imported.stdout

    def made(loras: list[str]) -> np.ndarray:
        args = ["generate", "--brand", "ember", "--prompt", "a red circle", "--seed", "5", "--steps", "4"]
        done = run([*args, *[f"--lora={item}" for item in loras], "--json"], cli_env)
        assert done.returncode == 0, done.stderr
        return pixels(json.loads(done.stdout)["images"][0]["path"])

    original = made(["ember-style=0.8", "ember-kohya=0"])
    again = made(["ember-style=0", "ember-kohya=0.8"])
    assert np.array_equal(original, again)
    assert not np.array_equal(original, made(["ember-style=0", "ember-kohya=0"]))  # the LoRA does something


def test_cli_refuses_a_wrong_family_file_naming_the_reason(
    cli_env: dict[str, str], studio_home: Path
) -> None:
    assert run(["db", "upgrade"], cli_env).returncode == 0
    assert run(["brands", "sync", "brands/"], cli_env).returncode == 0
    sdxl = studio_home / "sdxl-style.safetensors"
    save_file(
        {
            "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight": torch.zeros(
                4, 640
            ),
            "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_up.weight": torch.zeros(640, 4),
        },
        str(sdxl),
        metadata={"ss_base_model_version": "sdxl_base_v1-0"},
    )
    before = files_under(studio_home / "loras") if (studio_home / "loras").exists() else []
    refused = run(["loras", "import", "ember", "sdxl-style", str(sdxl)], cli_env)
    assert refused.returncode == 1
    assert "made for SDXL (metadata)" in refused.stderr and "is SD 1.x" in refused.stderr
    assert "Traceback" not in refused.stderr
    after = files_under(studio_home / "loras") if (studio_home / "loras").exists() else []
    assert after == before


# ------------------------------------------------------------------------------------------- service


def test_kohya_export_carries_the_metadata_a1111_comfyui_and_civitai_read(
    services: Any, tmp_path: Path
) -> None:
    _world(services)
    adapter = next(a for a in services.brands.get_brand(SYSTEM, "ember").adapters if a.name == "ember-style")
    done = services.loras.export_lora(
        Actor.user("mia"), "ember", "ember-style", 1, "kohya", tmp_path / "e.safetensors"
    )
    with safe_open(str(done.path), "pt") as handle:
        meta = handle.metadata()
        keys = list(handle.keys())
    rank = adapter.active_version.rank
    assert meta["ss_network_module"] == "networks.lora"
    assert meta["ss_network_dim"] == str(rank) and meta["ss_network_alpha"] == str(rank)
    assert meta["ss_base_model_version"] == "sd_v1"
    assert meta["ss_output_name"] == "ember-style"  # the name A1111 shows and <lora:…> tags use
    assert json.loads(meta["ss_tag_frequency"]) == {
        "ember-style": {word: 1 for word in adapter.trigger_words}
    }
    assert meta["modelspec.sai_model_spec"] == "1.0.1"
    assert meta["modelspec.architecture"] == "stable-diffusion-v1/lora"
    assert meta["modelspec.implementation"] == "diffusers"
    assert meta["modelspec.title"] == "ember-style"
    assert meta["modelspec.resolution"] == "128x128"  # the tiny model's native size
    assert meta["modelspec.trigger_phrase"] == ", ".join(adapter.trigger_words)
    assert meta["modelspec.hash_sha256"] == "0x" + autov3(done.path)
    assert meta["modelspec.date"] == adapter.active_version.created_at.date().isoformat()
    assert any(k.endswith(".alpha") for k in keys) and all(k.startswith("lora_unet_") for k in keys)
    # the same version exported again: the same tensors and metadata (the hash in PNGs stays the file's)
    again = services.loras.export_lora(
        SYSTEM, "ember", "ember-style", None, "kohya", tmp_path / "f.safetensors"
    )
    with safe_open(str(again.path), "pt") as handle:
        assert handle.metadata() == meta
    assert autov3(again.path) == autov3(done.path)


def test_diffusers_and_peft_files_come_back_with_the_same_pixels(services: Any, tmp_path: Path) -> None:
    _world(services)
    diffusers = services.loras.export_lora(
        SYSTEM, "ember", "ember-style", None, "diffusers", tmp_path / "d.safetensors"
    )
    peft = tmp_path / "adapter_model.safetensors"
    save_file(
        {f"base_model.model.{k.removeprefix('unet.')}": v for k, v in load_file(str(diffusers.path)).items()},
        str(peft),
    )
    services.loras.import_lora(SYSTEM, "ember", "ember-peft", peft, default_weight=0.8)
    kohya = services.loras.export_lora(
        SYSTEM, "ember", "ember-peft", None, "kohya", tmp_path / "k.safetensors"
    )
    services.loras.import_lora(SYSTEM, "ember", "ember-kohya", kohya.path)
    original = _generate(services, {"ember-style": 0.8, "ember-peft": 0, "ember-kohya": 0})
    assert np.array_equal(
        original, _generate(services, {"ember-style": 0, "ember-peft": 0.8, "ember-kohya": 0})
    )
    assert np.array_equal(
        original, _generate(services, {"ember-style": 0, "ember-peft": 0, "ember-kohya": 0.8})
    )
    # a kohya version goes out as kohya only, byte for byte the same tensors (A1111's hash stays)
    with pytest.raises(ValidationError, match="imported as a kohya file"):
        services.loras.export_lora(
            SYSTEM, "ember", "ember-kohya", None, "diffusers", tmp_path / "x.safetensors"
        )
    out = services.loras.export_lora(
        SYSTEM, "ember", "ember-kohya", None, "kohya", tmp_path / "y.safetensors"
    )
    assert autov3(out.path) == autov3(kohya.path)


def test_wrong_shapes_are_refused_and_permissions_hold(services: Any, tmp_path: Path) -> None:
    _world(services)
    wrong = tmp_path / "wrong.safetensors"
    stored = load_file(str(DEMO_BRANDS / "ember/loras/ember-style.safetensors"))
    key = next(k for k in stored if k.endswith("attn1.to_k.lora_A.weight"))
    save_file(
        {
            key: torch.zeros(4, 7),
            key.replace("lora_A", "lora_B"): torch.zeros(stored[key.replace("lora_A", "lora_B")].shape[0], 4),
        },
        str(wrong),
    )
    before = snapshot(services), files_under(services.settings.home)
    with pytest.raises(ValidationError, match=r"has \d+ input features, the LoRA has 7"):
        services.loras.import_lora(SYSTEM, "ember", "wrong", wrong)
    with pytest.raises(PermissionDeniedError):
        services.loras.import_lora(
            Actor.user("mia"), "ember", "mine", DEMO_BRANDS / "ember/loras/ember-style.safetensors"
        )
    assert (snapshot(services), files_under(services.settings.home)) == before
    with pytest.raises(NotFoundError, match="brand 'lagoon' not found"):  # mia is not a lagoon member
        services.loras.export_lora(
            Actor.user("mia"), "lagoon", "lagoon-style", None, "kohya", tmp_path / "l.safetensors"
        )
    with pytest.raises(NotFoundError, match="no version 7"):
        services.loras.export_lora(SYSTEM, "ember", "ember-style", 7, "kohya", tmp_path / "l.safetensors")
    with pytest.raises(ValidationError, match="format"):
        services.loras.export_lora(SYSTEM, "ember", "ember-style", None, "ckpt", tmp_path / "l.safetensors")


# ------------------------------------------------------------------------------------------ Brands tab


def test_brands_tab_download_gives_a_file_that_loads(demo_server: str, tmp_path: Path) -> None:
    """mia (a lagoon member) downloads lagoon's LoRA through the live app; diffusers loads it; ember's is
    not hers to take."""
    from diffusers import DiffusionPipeline
    from gradio_client import Client

    from studio.toyworld import MODEL_DIR

    client = Client(demo_server, auth=("mia", DEMO_PASSWORD), verbose=False, download_files=str(tmp_path))
    choices = client.predict("lagoon", api_name="/lora_choices")
    assert "lagoon-style" in json.dumps(choices)
    file, status = client.predict("lagoon", "lagoon-style", None, "kohya", api_name="/download_lora")
    path = Path(file if isinstance(file, str) else file["path"])
    assert path.name == "lagoon-style.safetensors" and "version 1 as a kohya file" in status
    with safe_open(str(path), "pt") as handle:
        assert handle.metadata()["ss_output_name"] == "lagoon-style"
        assert handle.metadata()["ss_base_model_version"] == "sd_v1"
    pipe = DiffusionPipeline.from_pretrained(str(MODEL_DIR))
    pipe.load_lora_weights(str(path), adapter_name="downloaded")  # diffusers' kohya converter reads it
    assert "downloaded" in pipe.get_list_adapters().get("unet", [])

    with pytest.raises(Exception, match="brand 'ember' not found"):  # a refusal, no file
        client.predict("ember", "ember-style", None, "kohya", api_name="/download_lora")
