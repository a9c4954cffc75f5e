"""The LoRA training loop, written once; each model family brings its hooks (:mod:`studio.training.families`).

Shaped like kohya's ``NetworkTrainer``: :class:`LoraTrainer` owns everything the families share (the dataset
cache, aspect-ratio buckets, the seeded batch draw, the optimisation step, checkpoints, resume, sample
images, the driver) and a family subclass overrides only what differs: how the model loads, how captions and
images are encoded, how noise and the target are made, and how the denoiser predicts.
Build one with :func:`studio.training.families.make_trainer`, then call :meth:`LoraTrainer.train`.

* Latents (VAE posterior means) and text embeddings are computed once per dataset and cached on disk, keyed by
  the model's content hash, the resolution and every image's sha256 + caption.
* Images of mixed shapes train in aspect-ratio buckets near the model's native area (never squashed); each
  batch comes from one bucket, and each image's original size and crop are kept (SDXL's ``add_time_ids``).
* Each step draws its bucket, batch, timesteps and noise from a generator seeded by ``(seed, step)``, so a run
  resumed from a checkpoint (LoRA weights + optimizer state) continues exactly as if it had never stopped.
* On a GPU: mixed precision (frozen weights in bf16/fp16, LoRA weights in fp32), gradient checkpointing,
  8-bit AdamW (``bitsandbytes``) and an int8 frozen denoiser (``torchao``) when asked for.
* Checkpoints are written atomically: the family's diffusers-format LoRA (``save_lora_weights``; the family's
  plain diffusers pipeline reads it with ``load_lora_weights``), a training-state file for resuming, and
  sample images from fixed prompts and seeds. ``alpha / rank`` is folded into ``lora_B`` so every loader reads
  the file the same way.
* The quality gate's images: each checkpoint also draws the sample prompts without the trigger word, and the
  job draws both sets once with the LoRA disabled (the base model's pixels, at the same seeds), reused by
  every checkpoint (:meth:`LoraTrainer.quality_images`). Scoring them is :mod:`studio.training.quality`'s job.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch

from studio.engine.models import native_resolution, resolve_model, size_multiple
from studio.errors import ModelError, ValidationError
from studio.storage import sha256_file
from studio.storage.atomic import atomic_writer
from studio.training.config import TrainConfig
from studio.training.dataset_cache import DatasetCache, cache_key, load_cache, save_cache
from studio.training.run_types import (
    Checkpoint,
    NullReporter,
    Reporter,
    TrainingStopped,
    TrainItem,
    TrainResult,
)
from studio.training.samples import CheckpointSamples, SampleSigner
from studio.training.training_state import restore_training_state, training_state

__all__ = [
    "Batch", "Checkpoint", "LoraTrainer", "NullReporter", "Reporter", "TrainItem", "TrainResult",
    "TrainingStopped", "device_memory_gib",
]  # fmt: skip

LORA_FILE = "lora.safetensors"
STATE_FILE = "state.safetensors"


@dataclass
class Batch:
    """One step's inputs: latents, named conditioning tensors, each image's geometry, the step's generator."""

    latents: torch.Tensor  # (B, C, h, w), scaled as the denoiser expects
    cond: dict[str, torch.Tensor]  # e.g. "embeds" (B, L, D), "pooled" (B, P)
    geometry: torch.Tensor  # (B, 6): original h, w, crop top, left, bucket h, w (SDXL's add_time_ids)
    generator: torch.Generator


def _step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step) % (2**63 - 1))


def device_memory_gib(device: str) -> float | None:
    """Total memory of the first CUDA device in GiB (None elsewhere)."""
    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory / 1024**3
    return None


class LoraTrainer(CheckpointSamples):
    """Train one LoRA: the shared loop. Subclasses (one per family) set the class attributes and hooks."""

    #: studio family names this trainer handles (sd1, sd2, sdxl, sd3, flux)
    families: ClassVar[tuple[str, ...]] = ()
    #: the diffusers pipeline class it loads, samples with and saves LoRAs through
    pipeline_class: ClassVar[str] = ""
    #: the pipeline component the LoRA trains: "unet" or "transformer"
    denoiser_name: ClassVar[str] = "unet"
    #: whether the pipeline takes negative prompt embeddings (classifier-free guidance); FLUX does not
    takes_negative_embeds: ClassVar[bool] = True

    def __init__(
        self,
        config: TrainConfig,
        items: Sequence[TrainItem],
        *,
        out_dir: Path,
        samples_dir: Path | None = None,
        cache_dir: Path | None = None,
        device: str = "cpu",
        reporter: Reporter | None = None,
        sign_sample: SampleSigner | None = None,
    ) -> None:
        if not items:
            raise ValidationError("dataset", "has no images; add images before training")
        self.config = config
        self.items = list(items)
        self.out_dir = Path(out_dir)
        self.samples_dir = Path(samples_dir) if samples_dir else self.out_dir / "samples"
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.device = device
        self.reporter: Reporter = reporter or NullReporter()
        self.pipe: Any = None
        self.model: Any = None  # the ResolvedModel
        self.noise_scheduler: Any = None
        self.weight_dtype = torch.float32
        self.cache: DatasetCache | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.params: list[tuple[str, torch.nn.Parameter]] = []
        self.native = 0  # the model's native side in pixels (its training area is native²)
        self.plain_samples: dict[str, torch.Tensor] = {}  # the sample prompts without the trigger, encoded
        self._baseline: dict[str, tuple[Path, ...]] | None = None  # the job's no-LoRA images, drawn once
        self.sign_sample = sign_sample  # Content Credentials for the sample PNGs (None: left unsigned)
        self.checkpoint_sha256: str | None = None

    # ------------------------------------------------------------------------------ family hooks

    def make_noise_scheduler(self) -> Any:
        """The scheduler that noises latents for training (from the pipeline's scheduler config)."""
        raise NotImplementedError

    def encode_caption_batch(self, captions: list[str]) -> dict[str, torch.Tensor]:
        """Up to 64 captions → named conditioning tensors (e.g. ``embeds``, ``pooled``), batch first."""
        raise NotImplementedError

    def latents_from_posterior(self, mean: torch.Tensor) -> torch.Tensor:
        """VAE posterior mean → the latents the denoiser is trained on (SD: × scaling factor)."""
        return mean * self.pipe.vae.config.scaling_factor

    def noisy_input_and_target(
        self, latents: torch.Tensor, noise: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(noisy latents, timesteps, target, per-sample loss weighting or None), all on the device."""
        raise NotImplementedError

    def predict(self, noisy: torch.Tensor, timesteps: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The denoiser's output for ``noisy`` at ``timesteps`` (same shape as the target)."""
        raise NotImplementedError

    # --------------------------------------------------------------------------------- shared hooks

    @torch.no_grad()
    def encode_prompts(self, captions: Sequence[str]) -> dict[str, torch.Tensor]:
        """Captions → named conditioning tensors (N, ...) on the CPU in fp32, 64 captions at a time."""
        parts: dict[str, list[torch.Tensor]] = {}
        for start in range(0, len(captions), 64):
            for name, tensor in self.encode_caption_batch(list(captions[start : start + 64])).items():
                parts.setdefault(name, []).append(tensor.float().cpu())
        return {name: torch.cat(tensors) for name, tensors in parts.items()}

    @property
    def denoiser(self) -> Any:
        return getattr(self.pipe, self.denoiser_name)

    def load_models(self) -> None:
        """Load the base pipeline (safetensors only), freeze it and move it to the device."""
        import diffusers

        model = self.model or resolve_model(self.config.base_model)
        if model.family not in self.families:
            raise ModelError(f"{model.ref}: a {model.family} model, not trained by {type(self).__name__}")
        if self.device == "cpu":
            torch.set_flush_denormal(True)  # denormal floats make CPU matmuls several times slower
        if self.device == "cuda" and self.config.mixed_precision:
            self.weight_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        no_checker = {"safety_checker": None, "requires_safety_checker": False}
        extra = no_checker if model.family in ("sd1", "sd2") else {}
        try:
            pipe = getattr(diffusers, self.pipeline_class).from_pretrained(
                str(model.path), dtype=self.weight_dtype, use_safetensors=True, local_files_only=True, **extra
            )
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            message = f"{model.ref}: cannot load ({type(exc).__name__}: {exc})"
            raise ModelError(message[:500]) from None
        self.adopt_pipeline(pipe, model, native_resolution(model.path))

    def adopt_pipeline(self, pipe: Any, model: Any, native: int) -> None:
        """Take ``pipe`` (``model``'s, loaded or built in memory) as the base: frozen, on the device, in eval
        mode, quantized when asked, with its training noise scheduler; ``native`` is its native side in px."""
        self.model = model
        pipe.set_progress_bar_config(disable=True)
        for module in pipe.components.values():
            if isinstance(module, torch.nn.Module):
                module.requires_grad_(False)
                module.to(self.device)
                module.eval()
        self.pipe = pipe
        if self.config.quantize_base != "none":
            self.quantize_denoiser()
        self.noise_scheduler = self.make_noise_scheduler()
        self.native = native

    def quantize_denoiser(self) -> None:
        """Store the frozen denoiser's linear weights in int8 (torchao weight-only); the LoRA trains on top in
        fp32. About halves a bf16 FLUX transformer's memory (24 → 12 GB), at some speed and quality cost."""
        try:
            from torchao.quantization import Int8WeightOnlyConfig, quantize_
        except ImportError:
            raise ModelError(
                "quantize_base int8 needs torchao: pip install 'brand-studio[gpu]'"
            ) from None
        quantize_(self.denoiser, Int8WeightOnlyConfig())

    @property
    def resolution(self) -> int:
        """The training side: the config's, or the model's native one."""
        return self.config.resolution or self.native

    def plan(self) -> Any:
        """The aspect-ratio bucket plan of the dataset at :attr:`resolution`."""
        from PIL import Image

        from studio.training.buckets import plan_buckets

        sizes = []
        for item in self.items:
            with Image.open(item.path) as img:
                sizes.append(img.size)
        return plan_buckets(sizes, self.resolution, model_multiple=size_multiple(self.model.path))

    def load_pixels(self, plan: Any) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Images → per image (3, h, w) in [-1, 1] fitted to its bucket, and the geometry rows (N, 6)."""
        import numpy as np
        from PIL import Image

        from studio.training.buckets import fit_image

        pixels, geometry = [], []
        for item, place in zip(self.items, plan.placements, strict=True):
            with Image.open(item.path) as img:
                fitted = fit_image(img.convert("RGB"), place)
            array = np.asarray(fitted, dtype=np.float32) / 127.5 - 1.0
            pixels.append(torch.from_numpy(array).permute(2, 0, 1).contiguous())
            (width, height), (bucket_w, bucket_h) = place.original, place.bucket
            # SDXL conditions on the original size and the crop in the space it was resized to
            geometry.append([height, width, place.crop_top, place.crop_left, bucket_h, bucket_w])
        return pixels, torch.tensor(geometry, dtype=torch.float32)

    @torch.no_grad()
    def encode_images(self, pixels: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """Same-size pixels in [-1, 1] → training latents (posterior means)."""
        vae = self.pipe.vae
        stacked = torch.stack(list(pixels)) if not isinstance(pixels, torch.Tensor) else pixels
        out = []
        for chunk in stacked.split(16):
            dist = vae.encode(chunk.to(self.device, dtype=vae.dtype)).latent_dist
            out.append(self.latents_from_posterior(dist.mean).float().cpu())
        return torch.cat(out)

    def cache_dataset(self) -> None:
        """Compute latents and text embeddings once per dataset (read from the disk cache when present)."""
        captions = [item.caption for item in self.items]
        samples = self.encode_prompts(self.config.sample_prompts_for_trigger())
        self.plain_samples = self.encode_prompts(self.config.sample_prompts_without_trigger())
        plan = self.plan()
        groups = [list(indices) for indices in plan.groups().values()]
        if len(groups) > 1:
            self.reporter.on_status("buckets: " + "; ".join(plan.summary()))
        if not self.config.cache_latents:
            pixels, geometry = self.load_pixels(plan)
            self.cache = DatasetCache(
                [], {}, self.encode_prompts([""]), geometry, groups, pixels, captions, samples
            )
            return
        path = None
        if self.cache_dir is not None:
            key = cache_key(self.model.content_hash or "", self.resolution, self.items)
            path = self.cache_dir / f"{key}.safetensors"
        if path is not None and path.is_file():
            try:
                latents, cond, empty, geometry = load_cache(path, len(self.items))
            except Exception:  # noqa: BLE001 - a damaged cache file is rebuilt
                path.unlink(missing_ok=True)
            else:
                self.cache = DatasetCache(
                    latents, cond, empty, geometry, groups, captions=captions, samples=samples
                )
                self.reporter.on_status("using the cached latents and text embeddings")
                self.release_text_encoders()
                return
        self.reporter.on_status(f"caching latents and text embeddings of {len(self.items)} images")
        pixels, geometry = self.load_pixels(plan)
        latents: list[torch.Tensor] = [torch.empty(0)] * len(self.items)
        for indices in groups:  # one VAE batch per bucket: images of one size
            for index, latent in zip(indices, self.encode_images([pixels[i] for i in indices]), strict=True):
                latents[index] = latent
        cond, empty = self.encode_prompts(captions), self.encode_prompts([""])
        self.cache = DatasetCache(latents, cond, empty, geometry, groups, captions=captions, samples=samples)
        self.release_text_encoders()
        if path is not None:
            save_cache(path, self.cache)

    def release_text_encoders(self) -> None:
        """On a GPU, move the text encoders to the CPU once every caption is cached (FLUX's T5 alone is
        about 9.5 GB in bf16); training and the samples use the cached embeddings."""
        if self.device != "cuda":
            return
        for name, module in self.pipe.components.items():
            if name.startswith("text_encoder") and isinstance(module, torch.nn.Module):
                module.to("cpu")
        torch.cuda.empty_cache()

    @property
    def target_modules(self) -> tuple[str, ...]:
        """The layers the LoRA trains: the config's, or the family's (:func:`default_lora_targets`)."""
        from studio.engine.adapters import default_lora_targets

        return self.config.target_modules or default_lora_targets(self.denoiser.config, self.model.family)

    def add_lora(self) -> None:
        """Add a peft LoRA to the denoiser's :attr:`target_modules`; only its weights train (in fp32)."""
        from peft import LoraConfig

        denoiser = self.denoiser
        torch.manual_seed(self.config.seed)
        denoiser.add_adapter(
            LoraConfig(
                r=self.config.rank,
                lora_alpha=self.config.alpha,
                init_lora_weights="gaussian",
                target_modules=list(self.target_modules),
            )
        )
        self.params = [(n, p) for n, p in denoiser.named_parameters() if p.requires_grad]
        if not self.params:
            targets = list(self.target_modules)
            raise ModelError(f"{self.model.ref}: no layer matches the LoRA targets {targets}")
        for _, param in self.params:
            param.data = param.data.float()
        if self.config.gradient_checkpointing:
            denoiser.enable_gradient_checkpointing()
        denoiser.train()

    def make_optimizer(self) -> torch.optim.Optimizer:
        """AdamW on the LoRA weights (bitsandbytes' 8-bit AdamW on a GPU when asked for and installed)."""
        params = [p for _, p in self.params]
        if self.config.optimizer == "adamw8bit" and self.device == "cuda":
            try:
                import bitsandbytes as bnb
            except ImportError:
                raise ModelError(
                    "optimizer adamw8bit needs bitsandbytes: pip install 'brand-studio[gpu]'"
                ) from None
            return bnb.optim.AdamW8bit(params, lr=self.config.learning_rate, weight_decay=1e-2)
        return torch.optim.AdamW(params, lr=self.config.learning_rate, weight_decay=1e-2)

    def batch_for_step(self, step: int) -> Batch:
        """The step's batch: a seeded draw of one bucket and images in it, the same after a resume."""
        assert self.cache is not None
        cache = self.cache
        gen = _step_generator(self.config.seed, step)
        groups = cache.groups
        if len(groups) == 1:
            members = groups[0]
        else:  # a bucket in proportion to its images
            weights = torch.tensor([len(g) for g in groups], dtype=torch.float64)
            members = groups[int(torch.multinomial(weights, 1, generator=gen))]
        picks = torch.randint(len(members), (self.config.batch_size,), generator=gen)
        index = torch.tensor(members)[picks]
        if self.config.cache_latents:
            latents = torch.stack([cache.latents[i] for i in index.tolist()])
            cond = {name: tensor[index] for name, tensor in cache.cond.items()}
        else:  # the slow path the cache avoids: encode this batch now
            assert cache.pixels is not None
            latents = self.encode_images([cache.pixels[i] for i in index.tolist()])
            cond = self.encode_prompts([cache.captions[i] for i in index.tolist()])
        if self.config.caption_dropout > 0:
            drop = torch.rand(len(index), generator=gen) < self.config.caption_dropout
            for name, tensor in cond.items():
                mask = drop.view(-1, *([1] * (tensor.ndim - 1)))
                cond[name] = torch.where(mask, cache.empty[name].expand_as(tensor), tensor)
        return Batch(latents, cond, cache.geometry[index], gen)

    def loss_for_batch(self, batch: Batch) -> torch.Tensor:
        """The family's denoising loss of one batch: (weighted) MSE between prediction and target."""
        noise = torch.randn(batch.latents.shape, generator=batch.generator)
        latents, noise = batch.latents.to(self.device), noise.to(self.device)
        noisy, timesteps, target, weighting = self.noisy_input_and_target(latents, noise, batch.generator)
        with torch.autocast(
            device_type="cuda" if self.device == "cuda" else "cpu",
            dtype=self.weight_dtype,
            enabled=self.weight_dtype != torch.float32,
        ):
            pred = self.predict(noisy.to(self.weight_dtype), timesteps, batch)
        error = (pred.float() - target.float()) ** 2
        if weighting is not None:
            error = weighting.float() * error
        return error.mean()

    def training_step(self, step: int) -> float:
        """One optimisation step; returns the loss."""
        assert self.optimizer is not None
        loss = self.loss_for_batch(self.batch_for_step(step))
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in self.params], 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    # ----------------------------------------------------------------------------------- checkpoints

    def lora_state_dict(self) -> dict[str, torch.Tensor]:
        """The LoRA in diffusers' peft naming (``…lora_A/B.weight``), alpha/rank folded into ``lora_B``.

        The keys are kept as peft names them: ``convert_state_dict_to_diffusers`` would rename only the
        attention layers (``…to_q.lora.down.weight``), and diffusers silently drops that part of a file that
        mixes both namings (e.g. with ``conv1`` among the targets).
        """
        from peft.utils import get_peft_model_state_dict

        scale = self.config.alpha / self.config.rank
        out = {}
        for key, value in get_peft_model_state_dict(self.denoiser).items():
            tensor = value.detach().float().cpu()
            out[key] = (tensor * scale if ".lora_B." in key else tensor).contiguous()
        return out

    def save_lora(self, folder: Path) -> Path:
        """Write the LoRA with the family pipeline's ``save_lora_weights``; returns the file."""
        import diffusers

        getattr(diffusers, self.pipeline_class).save_lora_weights(
            folder,
            **{f"{self.denoiser_name}_lora_layers": self.lora_state_dict()},
            weight_name=LORA_FILE,
            safe_serialization=True,
        )
        return folder / LORA_FILE

    def save_checkpoint(self, step: int, loss: float | None) -> Checkpoint:
        """Write the LoRA, training state and samples for ``step``; each file lands whole or not at all."""
        from safetensors.torch import save

        folder = self.out_dir / f"step-{step:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.out_dir, prefix=".staging-"))
        try:
            written = self.save_lora(staging)
            with open(written, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(written, folder / LORA_FILE)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        assert self.optimizer is not None
        state = training_state(self.params, self.optimizer)
        config = json.dumps(self.config.as_dict())
        metadata = {"step": str(step), "config": config, "family": self.model.family}
        with atomic_writer(folder / STATE_FILE) as fh:
            fh.write(save(state, metadata=metadata))
        lora_path = folder / LORA_FILE
        self.checkpoint_sha256 = sha256_file(lora_path)  # named in the samples' Content Credentials
        samples = self.sample_images(step)
        quality = self.quality_images(step, tuple(samples))
        return Checkpoint(
            step, lora_path, self.checkpoint_sha256, folder / STATE_FILE, tuple(samples), loss, quality
        )

    def load_training_state(self, path: Path) -> None:
        """Restore LoRA weights and optimizer moments from a checkpoint's state file."""
        assert self.optimizer is not None
        restore_training_state(path, self.params, self.optimizer)

    # ---------------------------------------------------------------------------------------- driver

    def setup(self) -> None:
        """Load, cache, add the LoRA and make the optimizer (idempotent)."""
        if self.optimizer is not None:
            return
        self.reporter.on_status("loading the base model")
        self.load_models()
        self.cache_dataset()
        self.add_lora()
        self.optimizer = self.make_optimizer()

    def train(self, resume_state: Path | None = None, start_step: int = 0) -> TrainResult:
        """Run steps ``start_step+1 … steps``, checkpointing every ``checkpoint_every`` and at the end."""
        started = time.perf_counter()
        self.setup()
        if resume_state is not None:
            self.load_training_state(resume_state)
        self.reporter.on_status(f"training from step {start_step}" if start_step else "training")
        final, loss = None, None
        total, every = self.config.steps, self.config.checkpoint_every
        for step in range(start_step + 1, total + 1):
            loss = self.training_step(step)
            self.reporter.on_step(step, loss)
            if step % every == 0 or step == total:
                final = self.save_checkpoint(step, loss)
                self.reporter.on_checkpoint(final)
        return TrainResult(total, final, time.perf_counter() - started, loss, self.config)
