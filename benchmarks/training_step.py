"""Training-step figures (issue 5), measured in one run on the tiny toy-world model, CPU, one thread:

1. the studio trainer's step vs a bare peft training loop on the same data and settings (target ≤ 1.05×);
2. cached latents + text embeddings vs encoding every step (target ≥ 1.3× faster).

    python benchmarks/training_step.py [--steps 30] [--rounds 5] [--model DIR]

Without the shipped weights (``studio/toyworld/weights``) it builds a random model of the same architecture.
Rounds are interleaved and the median per-step time of each is compared, so the busy machine's noise hits
every variant alike.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


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


def dataset(folder: Path, count: int = 16) -> list:
    from studio.toyworld import world
    from studio.training.trainer import TrainItem

    rng = random.Random(0)
    items = []
    for i in range(count):
        scene = world.random_scene(rng)
        path = folder / f"img{i}.png"
        world.render(scene).save(path)
        items.append(
            TrainItem(
                path, world.canonical_caption(scene.colour, scene.shape, scene.background, scene.position)
            )
        )
    return items


class BareLoop:
    """The textbook peft loop (diffusers' train_text_to_image_lora.py, minus accelerate) on cached tensors."""

    def __init__(self, model: Path, latents: torch.Tensor, embeds: torch.Tensor, config) -> None:  # noqa: ANN001
        from diffusers import DDPMScheduler, UNet2DConditionModel
        from peft import LoraConfig

        self.unet = UNet2DConditionModel.from_pretrained(model, subfolder="unet")
        self.unet.requires_grad_(False)
        torch.manual_seed(config.seed)
        self.unet.add_adapter(
            LoraConfig(r=config.rank, lora_alpha=config.alpha, init_lora_weights="gaussian",
                       target_modules=list(config.target_modules))
        )  # fmt: skip
        self.unet.train()
        self.params = [p for p in self.unet.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=config.learning_rate, weight_decay=1e-2)
        self.sched = DDPMScheduler.from_pretrained(model, subfolder="scheduler")
        self.latents, self.embeds, self.batch = latents, embeds, config.batch_size
        self.gen = torch.Generator().manual_seed(0)

    def step(self) -> float:
        idx = torch.randint(len(self.latents), (self.batch,), generator=self.gen)
        latents, embeds = self.latents[idx], self.embeds[idx]
        noise = torch.randn(latents.shape, generator=self.gen)
        t = torch.randint(0, self.sched.config.num_train_timesteps, (self.batch,), generator=self.gen)
        noisy = self.sched.add_noise(latents, noise, t)
        target = self.sched.get_velocity(latents, noise, t)
        pred = self.unet(noisy, t, embeds).sample
        loss = torch.nn.functional.mse_loss(pred.float(), target.float())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return float(loss.detach())


def per_step(run, steps: int) -> float:  # noqa: ANN001
    start = time.perf_counter()
    for _ in range(steps):
        run()
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=30, help="steps per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)

    from studio.toyworld import MODEL_DIR
    from studio.training.config import build_config
    from studio.training.trainer import LoraTrainer

    work = Path(tempfile.mkdtemp(prefix="bench-training-"))
    model = args.model or (MODEL_DIR if (MODEL_DIR / "model_index.json").is_file() else None)
    source = "the shipped toy-world model" if model else "a random toy-world-architecture model"
    model = model or random_toy_model(work / "model")
    items = dataset(work)
    config = build_config(str(model), preset="default", trigger="benchstyle", overrides={"batch_size": 8})

    trainer = LoraTrainer(config, items, out_dir=work / "cached")
    trainer.setup()
    uncached = LoraTrainer(
        build_config(str(model), preset="default", trigger="benchstyle",
                     overrides={"batch_size": 8, "cache_latents": False}),
        items, out_dir=work / "uncached",
    )  # fmt: skip
    uncached.setup()
    assert trainer.cache is not None
    bare = BareLoop(Path(model), trainer.cache.latents, trainer.cache.embeds, config)

    counters = {"trainer": 0, "uncached": 0}

    def trainer_step() -> None:
        counters["trainer"] += 1
        loss = trainer.training_step(counters["trainer"])
        trainer.reporter.on_step(counters["trainer"], loss)

    def uncached_step() -> None:
        counters["uncached"] += 1
        uncached.training_step(counters["uncached"])

    for run in (trainer_step, bare.step, uncached_step):  # warm-up
        per_step(run, 3)
    times: dict[str, list[float]] = {"trainer": [], "bare": [], "uncached": []}
    for _ in range(args.rounds):
        times["bare"].append(per_step(bare.step, args.steps))
        times["trainer"].append(per_step(trainer_step, args.steps))
        times["uncached"].append(per_step(uncached_step, args.steps))
    med = {k: statistics.median(v) for k, v in times.items()}
    overhead = med["trainer"] / med["bare"]
    speedup = med["uncached"] / med["trainer"]
    print(f"model: {source}; {len(items)} images 64x64, batch {config.batch_size}, rank {config.rank}, "
          f"1 CPU thread; {args.rounds} interleaved rounds x {args.steps} steps, medians")  # fmt: skip
    print(f"bare peft loop            {1000 * med['bare']:8.1f} ms/step")
    print(f"studio trainer            {1000 * med['trainer']:8.1f} ms/step")
    print(f"trainer, encoding each step {1000 * med['uncached']:6.1f} ms/step")
    ok1, ok2 = overhead <= 1.05, speedup >= 1.3
    mark1, mark2 = ("ok  " if ok else "MISS" for ok in (ok1, ok2))
    print(f"{mark1} trainer step / bare peft step = {overhead:.3f}x (target <= 1.05x)")
    print(f"{mark2} cached latents + text embeddings: {speedup:.2f}x faster (target >= 1.3x)")
    return 0 if ok1 and ok2 else 1


if __name__ == "__main__":
    sys.exit(main())
