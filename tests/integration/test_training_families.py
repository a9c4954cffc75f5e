"""LoRA training on every model family: tiny random SD1, SDXL, SD3 and FLUX pipelines built from config
(as diffusers' own tests build them), real peft and diffusers, no mocks.

For each family: 8 steps lower the loss on the steps' own draws; the LoRA loads in that family's plain
diffusers pipeline and changes its output; the studio's engine draws the same pixels as plain diffusers with
``load_lora_weights``; a run stopped after step 4 and resumed ends with the same LoRA tensors as one that
never stopped; the kohya export, read back through diffusers' converter, draws the same pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from engine_fixtures import family_dir, fast_cpu  # noqa: F401
from PIL import Image
from safetensors.torch import load_file

from studio.engine.generate import Engine
from studio.engine.request import GenerationRequest, LoraSpec
from studio.training.config import build_config
from studio.training.families import make_trainer
from studio.training.trainer import LoraTrainer, TrainItem

FAMILIES = ("sd1", "sdxl", "sd3", "flux")
PIPELINES = {
    "sd1": "StableDiffusionPipeline",
    "sdxl": "StableDiffusionXLPipeline",
    "sd3": "StableDiffusion3Pipeline",
    "flux": "FluxPipeline",
}
FAST = {"sample_steps": 1, "sample_prompts": ["{trigger}"], "sample_seeds": [7]}
PROMPT = "a red circle, brand"


def _dataset(folder: Path) -> list[TrainItem]:
    """Four 32×32 images: a coloured disc on a teal ground, captioned with the trigger word."""
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for i, colour in enumerate(("red", "orange", "yellow", "purple")):
        image = Image.new("RGB", (32, 32), (0, 128, 128))
        disc = Image.new("RGB", (16, 16), colour)
        image.paste(disc, (8 + 2 * i, 8))
        path = folder / f"{colour}.png"
        image.save(path)
        items.append(TrainItem(path, f"a {colour} circle, brand"))
    return items


def _config(model: Path, **overrides: Any) -> Any:
    values = {"steps": 8, "rank": 4, "batch_size": 2, "learning_rate": 1e-2, "checkpoint_every": 4}
    values.update({"resolution": 32, **FAST, **overrides})
    return build_config(str(model), preset="quick", trigger="brand", overrides=values)


def _trainer(model: Path, items: list[TrainItem], out: Path, **overrides: Any) -> LoraTrainer:
    return make_trainer(_config(model, **overrides), items, out_dir=out, cache_dir=out.parent / "cache")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, fast_cpu: None) -> dict[str, Any]:  # noqa: F811
    """Per family: the model folder, the dataset, the 8-step trainer and its result."""
    runs: dict[str, Any] = {}
    for family in FAMILIES:
        model = family_dir(family, tmp_path_factory)
        work = tmp_path_factory.mktemp(f"train-{family}")
        items = _dataset(work / "data")
        trainer = _trainer(model, items, work / "full")
        losses: list[float] = []
        trainer.reporter.on_step = lambda step, loss, losses=losses: losses.append(loss)  # type: ignore[method-assign]
        trainer.setup()
        with torch.no_grad():
            before = [float(trainer.loss_for_batch(trainer.batch_for_step(s))) for s in range(1, 9)]
        result = trainer.train()
        with torch.no_grad():
            after = [float(trainer.loss_for_batch(trainer.batch_for_step(s))) for s in range(1, 9)]
        runs[family] = {
            "model": model, "items": items, "work": work, "trainer": trainer, "result": result,
            "losses": losses, "before": before, "after": after,
        }  # fmt: skip
    return runs


def _plain(family: str, model: Path) -> Any:
    import diffusers

    pipe = getattr(diffusers, PIPELINES[family]).from_pretrained(str(model))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _draw(pipe: Any) -> np.ndarray:
    generator = torch.Generator("cpu").manual_seed(3)
    image = pipe(
        PROMPT, num_inference_steps=2, guidance_scale=4.0, width=32, height=32, generator=generator
    ).images[0]
    return np.asarray(image)


@pytest.mark.parametrize("family", FAMILIES)
def test_eight_steps_give_a_finite_falling_loss(trained: dict[str, Any], family: str) -> None:
    run = trained[family]
    assert type(run["trainer"]).__name__.lower().startswith(family.rstrip("1").replace("flux", "flux")[:2])
    assert len(run["losses"]) == 8 and all(np.isfinite(run["losses"]))
    # the same eight draws (batch, timesteps, noise) scored before and after training
    assert np.mean(run["after"]) < np.mean(run["before"])
    assert [c for c in sorted(p.name for p in (run["work"] / "full").iterdir()) if c.startswith("step")] == [
        "step-000004",
        "step-000008",
    ]
    assert run["result"].final.sample_paths and all(p.is_file() for p in run["result"].final.sample_paths)


@pytest.mark.parametrize("family", FAMILIES)
def test_default_targets_are_the_familys_attention_projections(trained: dict[str, Any], family: str) -> None:
    trainer = trained[family]["trainer"]
    keys = load_file(str(trained[family]["result"].final.lora_path)).keys()
    prefix = "unet." if family in ("sd1", "sdxl") else "transformer."
    assert keys and all(k.startswith(prefix) for k in keys)
    layers = {k.split(".lora_")[0].rsplit(".", 1)[-1] for k in keys} | {
        k.split(".lora_")[0].rsplit(".", 2)[-2] + ".0" for k in keys if ".to_out.0." in k
    }
    assert {"to_q", "to_k", "to_v"} <= layers
    if family in ("sd3", "flux"):
        assert {"add_q_proj", "add_k_proj", "add_v_proj"} <= layers
    assert "time_emb_proj" not in layers
    assert trainer.target_modules


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_loads_in_plain_diffusers_and_matches_the_studio(trained: dict[str, Any], family: str) -> None:
    run = trained[family]
    lora = run["result"].final.lora_path
    plain = _plain(family, run["model"])
    base = _draw(plain)
    plain.load_lora_weights(str(lora), adapter_name="trained")
    plain.set_adapters(["trained"], [0.8])
    with_lora = _draw(plain)
    assert np.abs(with_lora.astype(int) - base.astype(int)).max() > 0  # the LoRA changes the output

    engine = Engine(str(run["model"]), device="cpu")
    sampler = engine.model_info().default_sampler
    request = dict(
        prompt=PROMPT, seed=3, num_inference_steps=2, guidance_scale=4.0, width=32, height=32, sampler=sampler
    )
    studio_base = engine.generate(GenerationRequest(**request))[0].image
    studio_lora = engine.generate(GenerationRequest(**request, loras=(LoraSpec("trained", lora, None, 0.8),)))
    assert np.array_equal(np.asarray(studio_base), base)
    assert np.array_equal(np.asarray(studio_lora[0].image), with_lora)


@pytest.mark.parametrize("family", FAMILIES)
def test_stopping_after_step_4_and_resuming_gives_the_same_lora(trained: dict[str, Any], family: str) -> None:
    run = trained[family]
    checkpoint = run["work"] / "full" / "step-000004" / "state.safetensors"
    resumed = _trainer(run["model"], run["items"], run["work"] / "resumed")
    result = resumed.train(resume_state=checkpoint, start_step=4)
    full = load_file(str(run["result"].final.lora_path))
    again = load_file(str(result.final.lora_path))
    assert full.keys() == again.keys()
    for key in full:
        assert torch.equal(full[key], again[key]), key


@pytest.mark.parametrize("family", ["sd1", "sdxl", "flux"])
def test_kohya_export_read_by_diffusers_converter_gives_the_same_pixels(
    trained: dict[str, Any], family: str
) -> None:
    """The export, read back through diffusers' converter for kohya files, draws the LoRA's own pixels.

    diffusers' kohya FLUX converter is written for FLUX.1's sizes (its single blocks' fused ``linear1`` is
    split at 3072 wide), so on the tiny FLUX the round trip covers the double blocks; the single blocks'
    fusion is checked by :func:`test_fused_kohya_layers_carry_the_parts_updates`.
    """
    from safetensors.torch import save_file

    from studio.training.lora_export import export_kohya

    run = trained[family]
    lora = run["result"].final.lora_path
    if family == "flux":
        tensors = load_file(str(lora)).items()
        double = {k: v for k, v in tensors if k.startswith("transformer.transformer_blocks.")}
        lora = run["work"] / "double-blocks.safetensors"
        save_file(double, str(lora))
    kohya = export_kohya(lora, run["work"] / "kohya.safetensors", str(run["model"]))
    keys = load_file(str(kohya)).keys()
    assert all(k.startswith("lora_unet_") for k in keys)
    if family == "sdxl":  # the original UNet's block names, as sd-scripts writes SDXL LoRAs
        assert any(k.startswith("lora_unet_input_blocks_") for k in keys)
        assert not any("down_blocks" in k or "up_blocks" in k for k in keys)
    if family == "flux":  # the original FLUX's fused q/k/v layers
        assert "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight" in keys
        assert "lora_unet_double_blocks_0_txt_attn_qkv.lora_up.weight" in keys
    native = _plain(family, run["model"])
    native.load_lora_weights(str(lora), adapter_name="native")
    converted = _plain(family, run["model"])
    converted.load_lora_weights(str(kohya), adapter_name="kohya")  # diffusers' non-diffusers converter
    def lora_layers(pipe: Any) -> set[str]:
        denoiser = pipe.transformer if family == "flux" else pipe.unet
        return {name for name, module in denoiser.named_modules() if hasattr(module, "lora_A")}

    assert lora_layers(converted) == lora_layers(native) != set()
    assert np.array_equal(_draw(native), _draw(converted))


def test_every_trainable_family_has_a_trainer() -> None:
    from studio.training.config import TRAINABLE_FAMILIES
    from studio.training.families import TRAINERS, trainer_class

    assert sorted(f for cls in TRAINERS for f in cls.families) == sorted(TRAINABLE_FAMILIES)
    for family in TRAINABLE_FAMILIES:
        assert family in trainer_class(family).families


def test_a_model_no_worker_can_train_is_refused_at_queue_time(tmp_path: Path, studio_home: Path) -> None:
    """STUDIO_BASE_MODEL names a pipeline no trainer handles: queueing fails at once, naming the model and its
    family, and no job row is written (the worker would only have failed later)."""
    import json

    from argon2 import PasswordHasher, profiles
    from helpers import DEMO_BRANDS

    from studio.config import Settings
    from studio.errors import ValidationError
    from studio.services.container import build_services
    from studio.services.views import SYSTEM

    model = tmp_path / "pixart"
    model.mkdir()
    (model / "model_index.json").write_text(json.dumps({"_class_name": "PixArtAlphaPipeline"}))
    settings = Settings.from_env({"STUDIO_HOME": str(studio_home), "STUDIO_BASE_MODEL": "embedded:toyworld"})
    services = build_services(settings, password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    try:
        services.brands.sync(SYSTEM, DEMO_BRANDS)
        dataset = services.datasets.create_dataset(SYSTEM, "lagoon", "set")
        picture = tmp_path / "a.png"
        Image.new("RGB", (64, 64), (0, 128, 128)).save(picture)
        services.datasets.add_images(SYSTEM, dataset.id, [picture])
    finally:
        services.close()
    settings = Settings.from_env({"STUDIO_HOME": str(studio_home), "STUDIO_BASE_MODEL": str(model)})
    services = build_services(settings, password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST))
    try:
        with pytest.raises(ValidationError) as refused:
            services.training.queue_training(SYSTEM, "lagoon", "lagoon-style", dataset.id, steps=4)
        assert str(model) in str(refused.value) and "PixArtAlphaPipeline" in str(refused.value)
        assert services.training.list_jobs(SYSTEM) == []
    finally:
        services.close()


def test_mixed_shapes_train_in_buckets_with_sdxl_size_conditioning(
    tmp_path_factory: pytest.TempPathFactory,
    fast_cpu: None,  # noqa: F811
) -> None:
    """Landscape, portrait and square images train unsquashed in their own buckets; every batch comes from one
    bucket, and SDXL's add_time_ids get each image's original size and crop."""
    model = family_dir("sdxl", tmp_path_factory)
    work = tmp_path_factory.mktemp("buckets")
    items = []
    for i, size in enumerate([(60, 40), (62, 40), (40, 60), (40, 40), (64, 36), (36, 64)]):
        path = work / f"{i}.png"
        Image.new("RGB", size, (40 * i, 128, 128)).save(path)
        items.append(TrainItem(path, "a teal background, brand"))
    trainer = _trainer(model, items, work / "run", steps=6, checkpoint_every=6)
    trainer.setup()
    cache = trainer.cache
    assert cache is not None and len(cache.groups) >= 3
    shapes = {tuple(latent.shape) for latent in cache.latents}
    assert len(shapes) == len(cache.groups)  # one latent size per bucket
    for index, item in enumerate(items):
        with Image.open(item.path) as img:
            width, height = img.size
        original_h, original_w, crop_top, crop_left, bucket_h, bucket_w = cache.geometry[index].tolist()
        assert (original_w, original_h) == (width, height)
        latent_h, latent_w = cache.latents[index].shape[-2:]
        assert (bucket_w / latent_w, bucket_h / latent_h) == (2, 2)  # the ×2 VAE of the tiny model
        assert abs(bucket_w / bucket_h - width / height) < 0.35  # aspect kept within a bucket step
        assert crop_top >= 0 and crop_left >= 0
    for step in range(1, 7):
        batch = trainer.batch_for_step(step)
        assert batch.latents.shape[0] == 2  # stacked: every image of the batch has its bucket's size
        buckets = {tuple(row[-2:]) for row in batch.geometry.tolist()}
        assert len(buckets) == 1
    result = trainer.train()
    assert result.loss is not None and np.isfinite(result.loss)


@pytest.mark.parametrize("family", ["sd3", "flux"])
def test_fused_kohya_layers_carry_the_parts_updates(trained: dict[str, Any], family: str) -> None:
    """Where the original model fuses layers (q/k/v; FLUX's single-block linear1 with the MLP input), each
    exported layer's update (up @ down · alpha/rank) is the diffusers parts' updates stacked, zeros for an
    untrained part; every other layer's update is its own."""
    import re

    from studio.training.lora_export import export_kohya, read_diffusers_lora

    run = trained[family]
    lora = run["result"].final.lora_path
    kohya = load_file(str(export_kohya(lora, run["work"] / f"kohya-{family}.safetensors", str(run["model"]))))
    parts = read_diffusers_lora(lora)
    config = run["trainer"].denoiser.config
    inner = config.num_attention_heads * config.attention_head_dim

    def update(name: str) -> torch.Tensor:
        down, up = kohya[f"{name}.lora_down.weight"], kohya[f"{name}.lora_up.weight"]
        return up @ down * (kohya[f"{name}.alpha"] / down.shape[0])

    def part(path: str, rows: int, columns: int) -> torch.Tensor:
        if f"transformer.{path}" not in parts:
            return torch.zeros(rows, columns)
        down, up = parts[f"transformer.{path}"]
        return up @ down

    names = {k.rsplit(".", 2)[0] for k in kohya}
    pattern = r"lora_unet_(joint_blocks_\d+_(x|context)_block_attn_(qkv|proj))$" if family == "sd3" else (
        r"lora_unet_(double_blocks_\d+_(img|txt)_attn_(qkv|proj)|single_blocks_\d+_linear1)$"
    )
    assert names and all(re.match(pattern, n) for n in names), sorted(names)
    block = "joint_blocks" if family == "sd3" else "double_blocks"
    image_qkv = "x_block_attn_qkv" if family == "sd3" else "img_attn_qkv"
    columns = kohya[f"lora_unet_{block}_0_{image_qkv}.lora_down.weight"].shape[1]
    stacked = torch.cat([part(f"transformer_blocks.0.attn.to_{x}", inner, columns) for x in "qkv"])
    assert torch.allclose(update(f"lora_unet_{block}_0_{image_qkv}"), stacked, atol=1e-6)
    proj = "x_block_attn_proj" if family == "sd3" else "img_attn_proj"
    down, up = parts["transformer.transformer_blocks.0.attn.to_out.0"]
    assert torch.allclose(update(f"lora_unet_{block}_0_{proj}"), up @ down, atol=1e-6)
    if family == "flux":
        mlp = int(inner * 4)
        stacked = torch.cat(
            [part(f"single_transformer_blocks.0.attn.to_{x}", inner, columns) for x in "qkv"]
            + [torch.zeros(mlp, columns)]
        )
        assert torch.allclose(update("lora_unet_single_blocks_0_linear1"), stacked, atol=1e-6)


def test_an_int8_frozen_flux_base_trains_a_lora_plain_diffusers_loads(
    tmp_path_factory: pytest.TempPathFactory,
    fast_cpu: None,  # noqa: F811
) -> None:
    """quantize_base int8 (torchao weight-only; for FLUX on a 24 GB card): the frozen linear weights are int8,
    the LoRA trains in fp32 on top, and its file is an ordinary diffusers LoRA."""
    model = family_dir("flux", tmp_path_factory)
    work = tmp_path_factory.mktemp("int8")
    trainer = _trainer(model, _dataset(work / "data"), work / "run", steps=2, checkpoint_every=2,
                       quantize_base="int8")  # fmt: skip
    result = trainer.train()
    weight = trainer.denoiser.transformer_blocks[0].attn.to_q.base_layer.weight
    assert "Int8" in type(weight).__name__
    assert all(p.dtype == torch.float32 for _, p in trainer.params)
    assert result.loss is not None and np.isfinite(result.loss)
    plain = _plain("flux", model)
    base = _draw(plain)
    plain.load_lora_weights(str(result.final.lora_path), adapter_name="int8")
    assert "int8" in plain.get_list_adapters()["transformer"]
    assert not np.array_equal(_draw(plain), base)
