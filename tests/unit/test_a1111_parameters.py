"""The PNG ``parameters`` chunk says what AUTOMATIC1111 writes, and A1111's own reading rules get it back.

The expected lines are written from A1111's ``create_infotext`` (``modules/processing.py``): field order
Steps, Sampler, Schedule type, CFG scale, Seed, Size, Model hash, Model, RNG, the extensions' fields
(sd-webui-controlnet's ``ControlNet N``, the Lora extension's ``Lora hashes``), Version; values quoted with
JSON only when they hold ``,``, ``:`` or a line break. :func:`a1111_parse` below re-implements A1111's
``parse_generation_parameters`` (``modules/infotext_utils.py``) from its regex, plus the sampler/schedule
resolution of A1111 1.9+ (``sd_samplers.get_sampler_and_scheduler``), its extra-network tag regex and the
Lora extension's ``Lora hashes`` reading; nothing of A1111 is vendored.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from safetensors.torch import save

from studio.engine.a1111 import SCHEDULES, autov3, model_hash, sampler_and_schedule
from studio.engine.recipe import ControlEntry, LoraEntry, Recipe, read_parameters, read_recipe

REPO = Path(__file__).resolve().parents[2]

# --------------------------------------------------------------------------- A1111's reading rules, rewritten

RE_PARAM = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
RE_IMAGESIZE = re.compile(r"^(\d+)x(\d+)$")
RE_EXTRA_NET = re.compile(r"<(\w+):([^>]+)>")
#: A1111 1.9+ samplers (some of them) with the schedule each one uses for "Automatic"
A1111_SAMPLERS = {
    "DPM++ 2M": "karras", "DPM++ SDE": "karras", "DPM++ 2M SDE": "exponential",
    "DPM++ 2M SDE Heun": "exponential", "DPM++ 2S a": "karras", "DPM++ 3M SDE": "exponential",
    "Euler a": None, "Euler": None, "LMS": None, "DDIM": None, "PLMS": None, "UniPC": None, "LCM": None,
}  # fmt: skip
A1111_SCHEDULES = {
    "automatic": "Automatic", "uniform": "Uniform", "karras": "Karras", "exponential": "Exponential",
    "polyexponential": "Polyexponential", "sgm_uniform": "SGM Uniform", "kl_optimal": "KL Optimal",
    "align_your_steps": "Align Your Steps", "simple": "Simple", "normal": "Normal", "ddim": "DDIM",
    "beta": "Beta",
}  # fmt: skip


def unquote(text: str) -> str:
    if len(text) == 0 or text[0] != '"' or text[-1] != '"':
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def a1111_parse(text: str) -> dict[str, Any]:
    """``parse_generation_parameters``: prompt lines, ``Negative prompt:``, the last line's fields."""
    res: dict[str, Any] = {}
    prompt, negative, done_with_prompt = "", "", False
    *lines, lastline = text.strip().split("\n")
    if len(RE_PARAM.findall(lastline)) < 3:
        lines.append(lastline)
        lastline = ""
    for line in lines:
        line = line.strip()
        if line.startswith("Negative prompt:"):
            done_with_prompt = True
            line = line[16:].strip()
        if done_with_prompt:
            negative += ("" if negative == "" else "\n") + line
        else:
            prompt += ("" if prompt == "" else "\n") + line
    res["Prompt"], res["Negative prompt"] = prompt, negative
    for key, value in RE_PARAM.findall(lastline):
        if value[0] == '"' and value[-1] == '"':
            value = unquote(value)
        match = RE_IMAGESIZE.match(value)
        if match is not None:
            res[f"{key}-1"], res[f"{key}-2"] = match.group(1), match.group(2)
        else:
            res[key] = value
    res.setdefault("RNG", "GPU")  # "Missing RNG means the default was set, which is GPU RNG"
    res.setdefault("Schedule type", "Automatic")
    return res


def a1111_sampler_and_schedule(params: dict[str, Any]) -> tuple[str, str]:
    """``get_sampler_and_scheduler`` (A1111 1.9+): a schedule name at the end of the sampler name is split
    off; the sampler's own schedule is what "Automatic" means when it runs."""
    name = params.get("Sampler") or "DPM++ 2M"
    found = params.get("Schedule type", "Automatic")
    for key, label in A1111_SCHEDULES.items():
        for option in (label, key):
            if name.endswith(" " + option):
                found, name = label, name[: -(len(option) + 1)]
                break
    assert name in A1111_SAMPLERS, f"A1111 has no sampler {name!r}"
    if found == "Automatic" and A1111_SAMPLERS[name]:
        found = A1111_SCHEDULES[A1111_SAMPLERS[name]]
    return name, found


def a1111_loras(params: dict[str, Any]) -> tuple[list[tuple[str, float]], dict[str, str]]:
    """The ``<lora:name:weight>`` tags of the prompt and the ``Lora hashes`` field (name → short hash)."""
    tags = [
        (items.split(":")[0], float(items.split(":")[1]) if ":" in items else 1.0)
        for kind, items in RE_EXTRA_NET.findall(params["Prompt"])
        if kind == "lora"
    ]
    pairs = [item.strip().split(":", 1) for item in params.get("Lora hashes", "").split(",") if item.strip()]
    return tags, {name.strip(): short.strip() for name, short in pairs}


# --------------------------------------------------------------------------------------- fixed expected text


def _recipe(**overrides: Any) -> Recipe:
    values: dict[str, Any] = {
        "base_model": "embedded:toyworld",
        "base_model_hash": "ab" * 32,
        "a1111_model_hash": "0123456789abcdef" * 4,
        "family": "sd1",
        "prompt": "acme style, a red circle",
        "prompt_typed": "a red circle",
        "negative_prompt": "blurry, ugly",
        "sampler": "DPM++ 2M",
        "steps": 20,
        "guidance_scale": 6.0,
        "seed": 4242,
        "width": 64,
        "height": 48,
        "loras": (
            LoraEntry("acme_style", "cd" * 32, 0.8, "3", a1111_hash="fedcba9876543210"),
            LoraEntry("shine", "ef" * 32, 1.0, "4", a1111_hash="00112233445566"),
        ),
        "controls": (ControlEntry("lllyasviel/control_v11p_sd15_canny", "12" * 32, 0.9, 0.0, 0.6, "tpl-1"),),
        "versions": {"studio": "0.9.0", "torch": "2.9"},
    }
    values.update(overrides)
    return Recipe(**values)


def test_parameters_text_is_the_line_a1111_writes() -> None:
    assert _recipe().parameters_text().split("\n") == [
        "acme style, a red circle <lora:acme_style:0.8> <lora:shine:1>",
        "Negative prompt: blurry, ugly",
        "Steps: 20, Sampler: DPM++ 2M, Schedule type: Uniform, CFG scale: 6, Seed: 4242, Size: 64x48, "
        'Model hash: 0123456789, Model: "embedded:toyworld", RNG: CPU, '
        'ControlNet 0: "Module: none, Model: control_v11p_sd15_canny, Weight: 0.9, '
        "Resize Mode: Crop and Resize, Processor Res: -1, Threshold A: -1, Threshold B: -1, "
        "Guidance Start: 0.0, Guidance End: 0.6, "
        'Pixel Perfect: False, Control Mode: Balanced", '
        'Lora hashes: "acme_style: fedcba987654, shine: 001122334455", Version: brand-studio 0.9.0',
    ]


def test_a_local_model_folder_is_named_by_its_last_part_never_its_server_path() -> None:
    """A1111 writes a checkpoint's name; a PNG a marketer downloads must not show the server's folders."""
    line = _recipe(base_model="/srv/models/brand-sdxl-v2").parameters_text().split("\n")[-1]
    assert "Model: brand-sdxl-v2," in line
    assert "/srv/models" not in line
    hub = _recipe(base_model="stabilityai/sdxl-turbo").parameters_text()
    assert "Model: stabilityai/sdxl-turbo," in hub


def test_no_negative_prompt_no_loras_no_hashes_leave_their_fields_out() -> None:
    recipe = _recipe(negative_prompt="", loras=(), controls=(), a1111_model_hash=None, sampler="Euler a")
    assert recipe.parameters_text().split("\n") == [
        "acme style, a red circle",
        "Steps: 20, Sampler: Euler a, Schedule type: Uniform, CFG scale: 6, Seed: 4242, Size: 64x48, "
        'Model: "embedded:toyworld", RNG: CPU, Version: brand-studio 0.9.0',
    ]


@pytest.mark.parametrize("sampler", list(SCHEDULES))
def test_every_studio_sampler_is_an_a1111_sampler_with_its_schedule(sampler: str) -> None:
    from studio.engine.samplers import SAMPLERS

    assert set(SCHEDULES) == set(SAMPLERS)
    params = a1111_parse(_recipe(sampler=sampler).parameters_text())
    name, schedule = a1111_sampler_and_schedule(params)
    assert (name, schedule) == sampler_and_schedule(sampler, "sd1")
    # A1111 1.9+ runs plain DPM++ 2M on Karras sigmas: the studio's plain one must not read as Karras
    assert schedule == ("Karras" if sampler == "DPM++ 2M Karras" else schedule)
    if sampler == "DPM++ 2M":
        assert schedule == "Uniform"
    assert a1111_sampler_and_schedule({"Sampler": "DPM++ 2M"}) == (
        "DPM++ 2M",
        "Karras",
    )  # what it used to read


def test_flow_models_write_euler_with_the_simple_schedule() -> None:
    params = a1111_parse(_recipe(family="flux", sampler="Euler").parameters_text())
    assert (params["Sampler"], params["Schedule type"]) == ("Euler", "Simple")


def test_hashes_are_a1111s(tmp_path: Path) -> None:
    """AutoV3 skips the 8-byte length and the header (metadata does not change it); AutoV2 is the file's."""
    import torch

    tensors = {
        "lora_unet_x.lora_down.weight": torch.ones(2, 3),
        "lora_unet_x.lora_up.weight": torch.zeros(3, 2),
    }
    plain, tagged = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    plain.write_bytes(save(tensors))
    tagged.write_bytes(save(tensors, metadata={"ss_output_name": "x"}))
    data = plain.read_bytes()
    expected = hashlib.sha256(data[8 + int.from_bytes(data[:8], "little") :]).hexdigest()
    assert autov3(plain) == autov3(tagged) == expected
    unet = REPO / "studio/toyworld/weights/unet/diffusion_pytorch_model.safetensors"
    assert model_hash(unet.parents[1], "sd1") == hashlib.sha256(unet.read_bytes()).hexdigest()


# ------------------------------------------------------------------------ a real studio PNG, read by A1111


def test_a1111_reads_a_real_studio_png(services: Any) -> None:
    """A PNG made on the tiny model with the demo brand's LoRA: A1111's rules give back every field."""
    from studio.engine.kohya_files import export_kohya
    from studio.services.generation import GenerateInput
    from studio.services.views import SYSTEM

    services.users.add_user(SYSTEM, "ada", ["admin"], "a-long-enough-password-1")
    services.brands.sync(SYSTEM, REPO / "brands")
    result = services.generation.generate(
        SYSTEM,
        GenerateInput(
            brand="ember", prompt="a red circle", negative_prompt="blurry", seed=31, sampler="DPM++ 2M"
        ),
    )
    path = result.images[0].path
    recipe = read_recipe(path)
    params = a1111_parse(read_parameters(path) or "")
    tags, hashes = a1111_loras(params)
    prompt_without_tags = RE_EXTRA_NET.sub("", params["Prompt"]).strip()
    assert prompt_without_tags == recipe.prompt
    assert tags == [(lora.name, lora.weight) for lora in recipe.loras] and tags
    assert params["Negative prompt"] == recipe.negative_prompt
    assert int(params["Steps"]) == recipe.steps and float(params["CFG scale"]) == recipe.guidance_scale
    assert int(params["Seed"]) == 31 and (params["Size-1"], params["Size-2"]) == (
        str(recipe.width),
        str(recipe.height),
    )
    assert a1111_sampler_and_schedule(params) == ("DPM++ 2M", "Uniform")
    assert params["RNG"] == "CPU"
    assert params["Model hash"] == model_hash(REPO / "studio/toyworld/weights", "sd1")[:10]
    # the LoRA hash is the one A1111 computes for the file it loads: the studio's kohya export
    adapter = next(a for a in services.brands.get_brand(SYSTEM, "ember").adapters if a.name == tags[0][0])
    exported = export_kohya(
        adapter.active_version.file_path, path.parent / "x.safetensors", "embedded:toyworld"
    )
    assert hashes == {adapter.name: autov3(exported)[:12]}
    exported.unlink()


def test_a_guidance_other_than_plain_cfg_is_written_after_rng_only_where_it_differs() -> None:
    guidance = {"method": "fdg", "fdg_low_scale": 2.0, "optimized_scale": True, "stop": 0.8, "rescale": 0.0}
    line = _recipe(guidance=guidance, controls=(), loras=()).parameters_text().split("\n")[-1]
    written = "RNG: CPU, Guidance: fdg, FDG low scale: 2, CFG-Zero* scale: True, Guidance stop: 0.8, Version:"
    assert written in line, line
    rescaled = _recipe(guidance={"method": "cfg", "rescale": 0.7}, controls=(), loras=()).parameters_text()
    assert "RNG: CPU, CFG Rescale φ: 0.7, Version:" in rescaled  # sd-webui-cfg-rescale's key
    assert "Guidance:" not in _recipe(guidance=None).parameters_text()  # plain CFG: A1111's line exactly
