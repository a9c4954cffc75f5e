"""Training-step figures (issues 5 and 14), per model family, measured in one run on CPU, one thread:

1. the studio trainer's step vs a bare, textbook peft loop doing the same work on the same cached tensors
   (same batch size, rank, target layers, noise and timestep scheme, denoiser call) — target ≤ 1.05×;
2. the trainer with cached latents + text embeddings vs encoding every batch (``cache_latents`` off) —
   target ≥ 1.3× faster.

    python benchmarks/training_step.py [--families toyworld,sd1,sdxl,sd3,flux] [--steps 30] [--rounds 5]

Families: ``toyworld`` is the embedded toy-world model (an SD1 pipeline; the shipped weights, or a random
model of its architecture without them) at its native 64 px on toy-world scenes, batch 8, as this benchmark
measured it before; ``sd1``, ``sdxl``, ``sd3`` and ``flux`` are the tiny random pipelines the tests build
from config (``tests/engine_fixtures.py``) at 32 px on coloured shapes, batch 4.

The bare loops follow diffusers' training examples (``train_text_to_image_lora.py``,
``train_text_to_image_lora_sdxl.py``, ``train_dreambooth_lora_sd3.py``, ``train_dreambooth_lora_flux.py``),
minus accelerate, on the trainer's cached tensors stacked once. Rounds are interleaved step by step (each
round runs one step of each variant in turn, the order rotated between rounds), each step is timed alone,
and the medians of each variant's step times are compared: the busy machine's noise hits every variant
alike, and a burst of it spoils a few steps of each, not one variant's whole round.
Exit status 1 when any figure misses its target.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("toyworld", "sd1", "sdxl", "sd3", "flux")
MAX_OVERHEAD = 1.05
MIN_SPEEDUP = 1.3


# ------------------------------------------------------------------------------------------------ models


def random_toy_model(folder: Path) -> Path:
    """A random-weights pipeline with the toy-world architecture (when the trained one is absent)."""
    from diffusers import StableDiffusionPipeline

    from studio.toyworld import models, vocab

    tokenizer = vocab.build_tokenizer()
    pipe = StableDiffusionPipeline(
        vae=models.make_vae(),
        text_encoder=models.make_text_encoder(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id),
        tokenizer=tokenizer,
        unet=models.make_unet(),
        scheduler=models.make_inference_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def tiny_model(family: str, folder: Path) -> Path:
    """The tests' tiny random ``family`` pipeline, saved as a safetensors diffusers folder."""
    if str(ROOT / "tests") not in sys.path:
        sys.path.insert(0, str(ROOT / "tests"))
    from engine_fixtures import FAMILY_BUILDERS, save_pipeline

    return save_pipeline(FAMILY_BUILDERS[family](), folder)


# ---------------------------------------------------------------------------------------------- datasets


def toyworld_dataset(folder: Path, count: int = 16) -> list:
    from studio.toyworld import world
    from studio.training.trainer import TrainItem

    rng = random.Random(0)
    items = []
    for i in range(count):
        scene = world.random_scene(rng)
        path = folder / f"img{i}.png"
        world.render(scene).save(path)
        caption = world.canonical_caption(scene.colour, scene.shape, scene.background, scene.position)
        items.append(TrainItem(path, caption))
    return items


def shapes_dataset(folder: Path, count: int = 8, size: int = 32) -> list:
    """``count`` size×size images: a coloured disc or square on a coloured ground, captioned."""
    from PIL import Image, ImageDraw

    from studio.training.trainer import TrainItem

    colours = ("red", "green", "blue", "yellow", "purple", "orange", "black", "white")
    grounds = ((0, 128, 128), (240, 240, 240), (30, 30, 30), (200, 180, 120))
    rng = random.Random(0)
    items = []
    for i in range(count):
        colour, shape = colours[i % len(colours)], ("circle", "square")[i % 2]
        image = Image.new("RGB", (size, size), grounds[i % len(grounds)])
        x, y = rng.randrange(0, size // 2), rng.randrange(0, size // 2)
        box = (x, y, x + size // 2, y + size // 2)
        draw = ImageDraw.Draw(image)
        (draw.ellipse if shape == "circle" else draw.rectangle)(box, fill=colour)
        path = folder / f"img{i}.png"
        image.save(path)
        items.append(TrainItem(path, f"a {colour} {shape}, brand style"))
    return items


# ------------------------------------------------------------------------------------------- bare loops


class BareLoop:
    """The textbook peft loop on cached tensors: LoRA on the denoiser, AdamW, clip, step.

    Subclasses make the noisy input and target and call the denoiser as diffusers' example for the family
    does. Latents are the trainer's cached ones stacked once (one bucket); conditioning is indexed per batch.
    """

    def __init__(self, model: Path, trainer: Any) -> None:
        from peft import LoraConfig

        config, cache = trainer.config, trainer.cache
        assert cache is not None and len(cache.groups) == 1, "one bucket expected"
        self.model = model
        self.denoiser = self.load_denoiser()
        self.denoiser.requires_grad_(False)
        torch.manual_seed(config.seed)
        self.denoiser.add_adapter(
            LoraConfig(r=config.rank, lora_alpha=config.alpha, init_lora_weights="gaussian",
                       target_modules=list(trainer.target_modules))
        )  # fmt: skip
        self.denoiser.train()
        self.params = [p for p in self.denoiser.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=config.learning_rate, weight_decay=1e-2)
        self.latents = torch.stack(cache.latents)
        self.cond = dict(cache.cond)
        self.geometry = cache.geometry
        self.batch = config.batch_size
        self.gen = torch.Generator().manual_seed(0)

    def load_denoiser(self) -> Any:
        from diffusers import UNet2DConditionModel

        return UNet2DConditionModel.from_pretrained(self.model, subfolder="unet")

    def loss(self, idx: torch.Tensor, latents: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def step(self) -> float:
        idx = torch.randint(len(self.latents), (self.batch,), generator=self.gen)
        latents = self.latents[idx]
        noise = torch.randn(latents.shape, generator=self.gen)
        loss = self.loss(idx, latents, noise)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return float(loss.detach())


class BareDDPM(BareLoop):
    """SD 1.x/2.x (``train_text_to_image_lora.py``): DDPM noise, uniform timesteps, epsilon or v target."""

    def __init__(self, model: Path, trainer: Any) -> None:
        from diffusers import DDPMScheduler

        super().__init__(model, trainer)
        self.sched = DDPMScheduler.from_pretrained(model, subfolder="scheduler")

    def loss(self, idx: torch.Tensor, latents: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        t = torch.randint(0, self.sched.config.num_train_timesteps, (self.batch,), generator=self.gen)
        noisy = self.sched.add_noise(latents, noise, t)
        if self.sched.config.prediction_type == "v_prediction":
            target = self.sched.get_velocity(latents, noise, t)
        else:
            target = noise
        pred = self.denoiser(noisy, t, self.cond["embeds"][idx], **self.unet_kwargs(idx)).sample
        return torch.nn.functional.mse_loss(pred.float(), target.float())

    def unet_kwargs(self, idx: torch.Tensor) -> dict[str, Any]:
        return {}


class BareSDXL(BareDDPM):
    """SDXL (``train_text_to_image_lora_sdxl.py``): pooled embeds and add_time_ids in added_cond_kwargs."""

    def unet_kwargs(self, idx: torch.Tensor) -> dict[str, Any]:
        # add_time_ids = original (h, w) + crop (top, left) + target (h, w), per image
        return {
            "added_cond_kwargs": {"text_embeds": self.cond["pooled"][idx], "time_ids": self.geometry[idx]}
        }


class BareFlow(BareLoop):
    """Flow matching (``train_dreambooth_lora_sd3.py`` / ``_flux.py``): density-sampled timesteps from the
    pipeline's FlowMatchEulerDiscreteScheduler, noisy = (1 − σ)x + σε, target ε − x, weighted MSE."""

    weighting_scheme = "logit_normal"

    def __init__(self, model: Path, trainer: Any) -> None:
        from diffusers import FlowMatchEulerDiscreteScheduler

        super().__init__(model, trainer)
        self.sched = FlowMatchEulerDiscreteScheduler.from_pretrained(model, subfolder="scheduler")

    def loss(self, idx: torch.Tensor, latents: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        from diffusers.training_utils import (
            compute_density_for_timestep_sampling,
            compute_loss_weighting_for_sd3,
        )

        u = compute_density_for_timestep_sampling(
            weighting_scheme=self.weighting_scheme, batch_size=self.batch, logit_mean=0.0, logit_std=1.0,
            mode_scale=1.29, generator=self.gen,
        )  # fmt: skip
        indices = (u * self.sched.config.num_train_timesteps).long().clamp(max=len(self.sched.timesteps) - 1)
        timesteps = self.sched.timesteps[indices]
        # the examples' get_sigmas(timesteps) looks each timestep up again; indexing gives the same sigmas
        sigmas = self.sched.sigmas[indices].view(-1, 1, 1, 1)
        noisy = (1.0 - sigmas) * latents + sigmas * noise
        pred = self.predict(idx, noisy, timesteps)
        weighting = compute_loss_weighting_for_sd3(weighting_scheme=self.weighting_scheme, sigmas=sigmas)
        target = noise - latents
        error = (weighting.float() * (pred.float() - target.float()) ** 2).reshape(self.batch, -1)
        return torch.mean(error, 1).mean()

    def predict(self, idx: torch.Tensor, noisy: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class BareSD3(BareFlow):
    def load_denoiser(self) -> Any:
        from diffusers import SD3Transformer2DModel

        return SD3Transformer2DModel.from_pretrained(self.model, subfolder="transformer")

    def predict(self, idx: torch.Tensor, noisy: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return self.denoiser(
            hidden_states=noisy, timestep=timesteps, encoder_hidden_states=self.cond["embeds"][idx],
            pooled_projections=self.cond["pooled"][idx], return_dict=False,
        )[0]  # fmt: skip


class BareFlux(BareFlow):
    weighting_scheme = "none"

    def __init__(self, model: Path, trainer: Any) -> None:
        from diffusers import AutoencoderKL

        super().__init__(model, trainer)
        vae_config = AutoencoderKL.load_config(model, subfolder="vae")
        self.vae_scale_factor = 2 ** (len(vae_config["block_out_channels"]) - 1)
        # the example gets text_ids (zeros) from encode_prompt with the cached embeddings
        self.text_ids = torch.zeros(self.cond["embeds"].shape[1], 3)

    def load_denoiser(self) -> Any:
        from diffusers import FluxTransformer2DModel

        return FluxTransformer2DModel.from_pretrained(self.model, subfolder="transformer")

    def predict(self, idx: torch.Tensor, noisy: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        from diffusers import FluxPipeline

        size, channels, height, width = noisy.shape
        image_ids = FluxPipeline._prepare_latent_image_ids(
            size, height // 2, width // 2, noisy.device, noisy.dtype
        )
        packed = FluxPipeline._pack_latents(noisy, size, channels, height, width)
        guidance = torch.tensor([1.0]).expand(size) if self.denoiser.config.guidance_embeds else None
        pred = self.denoiser(
            hidden_states=packed, timestep=timesteps / 1000, guidance=guidance,
            pooled_projections=self.cond["pooled"][idx], encoder_hidden_states=self.cond["embeds"][idx],
            txt_ids=self.text_ids, img_ids=image_ids, return_dict=False,
        )[0]  # fmt: skip
        scale = self.vae_scale_factor
        return FluxPipeline._unpack_latents(pred, height * scale, width * scale, scale)


BARE: dict[str, type[BareLoop]] = {
    "toyworld": BareDDPM, "sd1": BareDDPM, "sdxl": BareSDXL, "sd3": BareSD3, "flux": BareFlux,
}  # fmt: skip


# ----------------------------------------------------------------------------------------------- timing


def quiet() -> None:
    """No progress bars or load reports from diffusers, transformers and huggingface_hub."""
    import diffusers
    import huggingface_hub
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    huggingface_hub.utils.disable_progress_bars()


def step_times(run: Callable[[], object], steps: int) -> list[float]:
    """Seconds of each of ``steps`` calls (each step timed alone, so a neighbour's burst spoils few)."""
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def trainer_runner(trainer: Any) -> Callable[[], None]:
    """One trainer step per call, numbered on, reported as the training driver reports it."""
    counter = [0]

    def run() -> None:
        counter[0] += 1
        trainer.reporter.on_step(counter[0], trainer.training_step(counter[0]))

    return run


def measure(family: str, work: Path, steps: int, rounds: int, model_arg: Path | None) -> dict[str, Any]:
    """Build the three variants of ``family`` and time them in interleaved rounds; medians in seconds."""
    from studio.training.config import build_config
    from studio.training.families import make_trainer

    work.mkdir(parents=True)
    (work / "data").mkdir()
    if family == "toyworld":
        from studio.toyworld import MODEL_DIR

        model = model_arg or (MODEL_DIR if (MODEL_DIR / "model_index.json").is_file() else None)
        note = "shipped weights" if model else "random weights"
        model = model or random_toy_model(work / "model")
        items = toyworld_dataset(work / "data")
        preset, overrides = "default", {"batch_size": 8}
    else:
        model, note = tiny_model(family, work / "model"), "tiny random"
        items = shapes_dataset(work / "data")
        preset, overrides = "quick", {"batch_size": 4, "resolution": 32}

    def build(**extra: Any) -> Any:
        config = build_config(
            str(model), preset=preset, trigger="benchstyle", overrides={**overrides, **extra}
        )
        trainer = make_trainer(
            config, items, out_dir=work / ("cached" if config.cache_latents else "uncached")
        )
        trainer.setup()
        return trainer

    trainer, uncached = build(), build(cache_latents=False)
    bare = BARE[family](Path(model), trainer)
    runs = {"bare": bare.step, "trainer": trainer_runner(trainer), "uncached": trainer_runner(uncached)}
    for run in runs.values():  # warm-up
        step_times(run, 3)
    times: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    for number in range(rounds):  # interleaved rounds: one step of each variant in turn, the order rotated
        for _ in range(steps):
            for name in order[number % len(order) :] + order[: number % len(order)]:
                times[name].extend(step_times(runs[name], 1))
    med = {name: statistics.median(values) for name, values in times.items()}
    side = trainer.resolution
    setting = f"{len(items)} imgs {side}px, batch {trainer.config.batch_size}, rank {trainer.config.rank}"
    return {"family": family, "note": note, "setting": setting, **med}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--families", default=",".join(FAMILIES), help="comma-separated, of " + ", ".join(FAMILIES)
    )
    parser.add_argument("--steps", type=int, default=30, help="steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--model", type=Path, default=None, help="toy-world model folder (default: the shipped one)"
    )
    args = parser.parse_args(argv)
    families = [f.strip() for f in args.families.split(",") if f.strip()]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown families {unknown}; choose from {', '.join(FAMILIES)}")
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    quiet()

    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        rows = [
            measure(family, Path(tmp) / family, args.steps, args.rounds, args.model) for family in families
        ]

    print(f"CPU, 1 thread; {args.rounds} interleaved rounds x {args.steps} steps, median step; targets: "
          f"trainer/bare <= {MAX_OVERHEAD}x, cached >= {MIN_SPEEDUP}x faster than uncached")  # fmt: skip
    header = (f"{'family':<9} {'model, data':<44} {'bare ms':>8} {'trainer ms':>10} {'ratio':>6} "
              f"{'uncached ms':>11} {'speedup':>7}  result")  # fmt: skip
    print(header)
    print("-" * len(header))
    failed = False
    for row in rows:
        ratio, speedup = row["trainer"] / row["bare"], row["uncached"] / row["trainer"]
        misses = [
            name
            for name, miss in (("ratio", ratio > MAX_OVERHEAD), ("speedup", speedup < MIN_SPEEDUP))
            if miss
        ]
        failed |= bool(misses)
        result = "ok" if not misses else "MISS " + ", ".join(misses)
        print(f"{row['family']:<9} {row['note'] + '; ' + row['setting']:<44} {1000 * row['bare']:8.1f} "
              f"{1000 * row['trainer']:10.1f} {ratio:5.3f}x {1000 * row['uncached']:11.1f} {speedup:6.2f}x  "
              f"{result}")  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
