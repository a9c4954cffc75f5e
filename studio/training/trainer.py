"""The LoRA trainer: peft LoRA on the UNet's attention projections of an SD-family pipeline.

Shaped like kohya's ``NetworkTrainer``: small hook methods (load the models, cache the dataset, add the LoRA,
make the optimizer, the loss of one batch, save a checkpoint, draw samples) driven by a validated
:class:`~studio.training.config.TrainConfig`, and a short :meth:`LoraTrainer.train`.

* Latents (VAE posterior means) and text embeddings are computed once per dataset and cached on disk, keyed by
  the model's content hash, the resolution and every image's sha256 + caption.
* Each step draws its batch, timesteps and noise from a generator seeded by ``(seed, step)``, so a run resumed
  from a checkpoint (LoRA weights + optimizer state) continues exactly as if it had never stopped.
* On a GPU: mixed precision (frozen weights in bf16/fp16, LoRA weights in fp32) and, for small memory,
  gradient checkpointing.
* Checkpoints are written atomically: the diffusers-format LoRA (``save_lora_weights``; plain diffusers loads
  it with ``load_lora_weights``), a training-state file for resuming, and sample images from fixed prompts and
  seeds. ``alpha / rank`` is folded into ``lora_B`` so every loader reads the file the same way.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from studio.engine.adapters import default_lora_targets
from studio.errors import ModelError, ValidationError
from studio.storage import atomic_write_bytes, sha256_file
from studio.storage.atomic import atomic_writer
from studio.training.config import TrainConfig

LORA_FILE = "lora.safetensors"
STATE_FILE = "state.safetensors"
SUPPORTED_PIPELINES = ("StableDiffusionPipeline",)


class TrainingStopped(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by a reporter to stop training (``reason``: cancelled or lost)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class TrainItem:
    """One training image and its caption."""

    path: Path
    caption: str
    sha256: str | None = None


@dataclass(frozen=True)
class Checkpoint:
    """Files written at ``step`` (paths absolute)."""

    step: int
    lora_path: Path
    sha256: str
    state_path: Path
    sample_paths: tuple[Path, ...]
    loss: float | None


@dataclass(frozen=True)
class TrainResult:
    """What a finished run produced."""

    steps: int
    final: Checkpoint | None
    seconds: float
    loss: float | None
    config: TrainConfig


class Reporter(Protocol):
    """Receives progress; raising :class:`TrainingStopped` from ``on_step`` stops the run."""

    def on_status(self, message: str) -> None: ...

    def on_step(self, step: int, loss: float) -> None: ...

    def on_checkpoint(self, checkpoint: Checkpoint) -> None: ...


class NullReporter:
    """Ignores everything (benchmarks, scripts)."""

    def on_status(self, message: str) -> None:
        pass

    def on_step(self, step: int, loss: float) -> None:
        pass

    def on_checkpoint(self, checkpoint: Checkpoint) -> None:
        pass


@dataclass
class _Cache:
    latents: torch.Tensor  # (N, C, h, w), already scaled by the VAE's scaling factor
    embeds: torch.Tensor  # (N, L, D)
    empty: torch.Tensor  # (1, L, D): the empty caption (caption dropout)
    pixels: torch.Tensor | None = None  # (N, 3, H, W) in [-1, 1], only without latent caching
    captions: list[str] = field(default_factory=list)


def _step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step) % (2**63 - 1))


def device_memory_gib(device: str) -> float | None:
    """Total memory of the first CUDA device in GiB (None elsewhere)."""
    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_properties(0).total_memory / 1024**3
    return None


class LoraTrainer:
    """Train one LoRA; see the module docstring. Build, then call :meth:`train`."""

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
        self.noise_scheduler: Any = None
        self.weight_dtype = torch.float32
        self.cache: _Cache | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.params: list[tuple[str, torch.nn.Parameter]] = []
        self.model_hash = ""

    # ------------------------------------------------------------------------------------------ hooks

    def load_models(self) -> None:
        """Load the base pipeline (safetensors only), freeze it and move it to the device."""
        from diffusers import DDPMScheduler, StableDiffusionPipeline

        from studio.engine.models import resolve_model

        resolved = resolve_model(self.config.base_model)
        index = json.loads((resolved.path / "model_index.json").read_text())
        if index.get("_class_name") not in SUPPORTED_PIPELINES:
            raise ModelError(
                f"{self.config.base_model}: LoRA training supports Stable Diffusion 1.x/2.x pipelines "
                f"(StableDiffusionPipeline), not {index.get('_class_name')}"
            )
        self.model_hash = resolved.content_hash or ""
        if self.device == "cpu":
            torch.set_flush_denormal(True)  # denormal floats make CPU matmuls several times slower
        if self.device == "cuda" and self.config.mixed_precision:
            self.weight_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        try:
            pipe = StableDiffusionPipeline.from_pretrained(
                str(resolved.path),
                dtype=self.weight_dtype,
                use_safetensors=True,
                local_files_only=True,
                safety_checker=None,
                requires_safety_checker=False,
            )
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            message = f"{self.config.base_model}: cannot load ({type(exc).__name__}: {exc})"
            raise ModelError(message[:500]) from None
        pipe.set_progress_bar_config(disable=True)
        for module in (pipe.unet, pipe.vae, pipe.text_encoder):
            module.requires_grad_(False)
            module.to(self.device)
        pipe.vae.eval()
        pipe.text_encoder.eval()
        self.pipe = pipe
        self.noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)

    @property
    def resolution(self) -> int:
        if self.config.resolution:
            return self.config.resolution
        return int(self.pipe.unet.config.sample_size) * int(self.pipe.vae_scale_factor)

    def load_pixels(self, items: Sequence[TrainItem]) -> torch.Tensor:
        """Images → (N, 3, R, R) in [-1, 1]: shorter side resized to R, centre crop."""
        import numpy as np
        from PIL import Image, ImageOps

        size = self.resolution
        arrays = []
        for item in items:
            with Image.open(item.path) as img:
                fitted = ImageOps.fit(img.convert("RGB"), (size, size), Image.Resampling.BICUBIC)
            arrays.append(np.asarray(fitted, dtype=np.float32) / 127.5 - 1.0)
        return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()

    @torch.no_grad()
    def encode_prompts(self, captions: Sequence[str]) -> torch.Tensor:
        """Captions → text-encoder hidden states (N, L, D) on the CPU in fp32."""
        tok = self.pipe.tokenizer
        ids = tok(
            list(captions), padding="max_length", max_length=tok.model_max_length, truncation=True,
            return_tensors="pt",
        ).input_ids  # fmt: skip
        out = []
        for chunk in ids.split(64):
            out.append(self.pipe.text_encoder(chunk.to(self.device))[0].float().cpu())
        return torch.cat(out)

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Pixels in [-1, 1] → scaled VAE latents (posterior means)."""
        vae = self.pipe.vae
        out = []
        for chunk in pixels.split(16):
            dist = vae.encode(chunk.to(self.device, dtype=vae.dtype)).latent_dist
            out.append((dist.mean * vae.config.scaling_factor).float().cpu())
        return torch.cat(out)

    def _cache_key(self) -> str:
        digest = hashlib.sha256()
        digest.update(f"{self.model_hash}|{self.resolution}|v1".encode())
        for item in self.items:
            sha = item.sha256 or sha256_file(item.path)
            digest.update(f"|{sha}|{item.caption}".encode())
        return digest.hexdigest()

    def cache_dataset(self) -> None:
        """Compute latents and text embeddings once per dataset (read from the disk cache when present)."""
        from safetensors.torch import load_file, save

        captions = [item.caption for item in self.items]
        if not self.config.cache_latents:
            self.cache = _Cache(
                latents=torch.empty(0),
                embeds=torch.empty(0),
                empty=self.encode_prompts([""]),
                pixels=self.load_pixels(self.items),
                captions=captions,
            )
            return
        path = self.cache_dir / f"{self._cache_key()}.safetensors" if self.cache_dir else None
        if path is not None and path.is_file():
            try:
                data = load_file(str(path))
                self.cache = _Cache(data["latents"], data["embeds"], data["empty"], captions=captions)
                self.reporter.on_status("using the cached latents and text embeddings")
                return
            except Exception:  # noqa: BLE001 - a damaged cache file is rebuilt
                path.unlink(missing_ok=True)
        self.reporter.on_status(f"caching latents and text embeddings of {len(self.items)} images")
        latents = self.encode_images(self.load_pixels(self.items))
        embeds = self.encode_prompts(captions)
        empty = self.encode_prompts([""])
        self.cache = _Cache(latents, embeds, empty, captions=captions)
        if path is not None:
            blob = save({"latents": latents.contiguous(), "embeds": embeds.contiguous(), "empty": empty})
            atomic_write_bytes(path, blob)

    @property
    def target_modules(self) -> tuple[str, ...]:
        """The layers the LoRA trains: the config's, or the base model's (:func:`default_lora_targets`)."""
        return self.config.target_modules or default_lora_targets(self.pipe.unet.config)

    def add_lora(self) -> None:
        """Add a peft LoRA to the UNet's :attr:`target_modules`; only its weights train (in fp32)."""
        from peft import LoraConfig

        unet = self.pipe.unet
        torch.manual_seed(self.config.seed)
        unet.add_adapter(
            LoraConfig(
                r=self.config.rank,
                lora_alpha=self.config.alpha,
                init_lora_weights="gaussian",
                target_modules=list(self.target_modules),
            )
        )
        self.params = [(n, p) for n, p in unet.named_parameters() if p.requires_grad]
        for _, param in self.params:
            param.data = param.data.float()
        if self.config.gradient_checkpointing:
            unet.enable_gradient_checkpointing()
        unet.train()

    def make_optimizer(self) -> torch.optim.Optimizer:
        """AdamW on the LoRA weights."""
        return torch.optim.AdamW([p for _, p in self.params], lr=self.config.learning_rate, weight_decay=1e-2)

    def batch_for_step(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Generator]:
        """The step's (latents, text embeddings, generator): a seeded draw, the same after a resume."""
        assert self.cache is not None
        gen = _step_generator(self.config.seed, step)
        count = len(self.items)
        index = torch.randint(count, (self.config.batch_size,), generator=gen)
        if self.config.cache_latents:
            latents = self.cache.latents[index]
            embeds = self.cache.embeds[index]
        else:  # the slow path the cache avoids: encode this batch now
            assert self.cache.pixels is not None
            latents = self.encode_images(self.cache.pixels[index])
            embeds = self.encode_prompts([self.cache.captions[i] for i in index.tolist()])
        if self.config.caption_dropout > 0:
            drop = torch.rand(len(index), generator=gen) < self.config.caption_dropout
            embeds = torch.where(drop[:, None, None], self.cache.empty.expand_as(embeds), embeds)
        return latents, embeds, gen

    def loss_for_batch(
        self, latents: torch.Tensor, embeds: torch.Tensor, gen: torch.Generator
    ) -> torch.Tensor:
        """The denoising loss: noise (epsilon) or velocity (v-prediction) target, MSE."""
        sched = self.noise_scheduler
        noise = torch.randn(latents.shape, generator=gen)
        timesteps = torch.randint(0, sched.config.num_train_timesteps, (latents.shape[0],), generator=gen)
        latents, noise, timesteps = latents.to(self.device), noise.to(self.device), timesteps.to(self.device)
        noisy = sched.add_noise(latents, noise, timesteps)
        if sched.config.prediction_type == "v_prediction":
            target = sched.get_velocity(latents, noise, timesteps)
        else:
            target = noise
        with torch.autocast(
            device_type="cuda" if self.device == "cuda" else "cpu",
            dtype=self.weight_dtype,
            enabled=self.weight_dtype != torch.float32,
        ):
            pred = self.pipe.unet(
                noisy.to(self.weight_dtype), timesteps, embeds.to(self.device, self.weight_dtype)
            ).sample
        return F.mse_loss(pred.float(), target.float())

    def training_step(self, step: int) -> float:
        """One optimisation step; returns the loss."""
        assert self.optimizer is not None
        latents, embeds, gen = self.batch_for_step(step)
        loss = self.loss_for_batch(latents, embeds, gen)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for _, p in self.params], 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    # ----------------------------------------------------------------------------------- checkpoints

    def lora_state_dict(self) -> dict[str, torch.Tensor]:
        """The LoRA in diffusers' peft naming (``unet.…lora_A/B.weight``), alpha/rank folded into ``lora_B``.

        The keys are kept as peft names them: ``convert_state_dict_to_diffusers`` would rename only the
        attention layers (``…to_q.lora.down.weight``), and diffusers silently drops that part of a file that
        mixes both namings (e.g. with ``conv1`` among the targets).
        """
        from peft.utils import get_peft_model_state_dict

        scale = self.config.alpha / self.config.rank
        out = {}
        for key, value in get_peft_model_state_dict(self.pipe.unet).items():
            tensor = value.detach().float().cpu()
            out[key] = (tensor * scale if ".lora_B." in key else tensor).contiguous()
        return out

    def save_checkpoint(self, step: int, loss: float | None) -> Checkpoint:
        """Write the LoRA, training state and samples for ``step``; each file lands whole or not at all."""
        from diffusers import StableDiffusionPipeline
        from safetensors.torch import save

        folder = self.out_dir / f"step-{step:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=self.out_dir, prefix=".staging-"))
        try:
            StableDiffusionPipeline.save_lora_weights(
                staging,
                unet_lora_layers=self.lora_state_dict(),
                weight_name=LORA_FILE,
                safe_serialization=True,
            )
            with open(staging / LORA_FILE, "rb") as fh:
                os.fsync(fh.fileno())
            os.replace(staging / LORA_FILE, folder / LORA_FILE)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        state = self._training_state()
        with atomic_writer(folder / STATE_FILE) as fh:
            fh.write(save(state, metadata={"step": str(step), "config": json.dumps(self.config.as_dict())}))
        samples = self.sample_images(step)
        lora_path = folder / LORA_FILE
        return Checkpoint(step, lora_path, sha256_file(lora_path), folder / STATE_FILE, tuple(samples), loss)

    def _training_state(self) -> dict[str, torch.Tensor]:
        assert self.optimizer is not None
        state: dict[str, torch.Tensor] = {}
        for name, param in self.params:
            state[f"param::{name}"] = param.detach().float().cpu().contiguous()
            opt = self.optimizer.state.get(param, {})
            for key in ("exp_avg", "exp_avg_sq", "step"):
                if key in opt:
                    state[f"{key}::{name}"] = torch.as_tensor(opt[key]).detach().float().cpu().reshape(-1)
        return state

    def load_training_state(self, path: Path) -> None:
        """Restore LoRA weights and optimizer moments from a checkpoint's state file."""
        from safetensors.torch import load_file

        assert self.optimizer is not None
        data = load_file(str(path))
        for name, param in self.params:
            key = f"param::{name}"
            if key not in data or data[key].shape != param.shape:
                raise ValidationError(str(path), f"does not match this LoRA ({name})")
            with torch.no_grad():
                param.copy_(data[key].to(param.device))
            if f"exp_avg::{name}" in data:
                self.optimizer.state[param] = {
                    "exp_avg": data[f"exp_avg::{name}"].reshape(param.shape).to(param.device),
                    "exp_avg_sq": data[f"exp_avg_sq::{name}"].reshape(param.shape).to(param.device),
                    "step": data[f"step::{name}"].reshape(()).clone(),
                }

    @torch.no_grad()
    def sample_images(self, step: int) -> list[Path]:
        """Images from the fixed sample prompts and seeds, with the LoRA as it is now."""
        from diffusers import StableDiffusionPipeline

        from studio.storage.atomic import atomic_write_bytes as write

        pipe = self.pipe
        unet = pipe.unet
        unet.eval()
        sampler = StableDiffusionPipeline(
            vae=pipe.vae, text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer, unet=unet,
            scheduler=pipe.scheduler, safety_checker=None, feature_extractor=None,
            requires_safety_checker=False,
        )  # fmt: skip
        sampler.set_progress_bar_config(disable=True)
        prompts = self.config.sample_prompts_for_trigger()
        folder = self.samples_dir / f"step-{step:06d}"
        paths = []
        try:
            for seed in self.config.sample_seeds:
                with torch.autocast(
                    device_type="cuda" if self.device == "cuda" else "cpu",
                    dtype=self.weight_dtype,
                    enabled=self.weight_dtype != torch.float32,
                ):
                    images = sampler(
                        prompts,
                        num_inference_steps=self.config.sample_steps,
                        guidance_scale=self.config.sample_cfg,
                        height=self.resolution,
                        width=self.resolution,
                        generator=[torch.Generator().manual_seed(seed) for _ in prompts],
                    ).images
                for number, image in enumerate(images):
                    import io

                    buffer = io.BytesIO()
                    image.save(buffer, format="PNG")
                    path = folder / f"p{number}-s{seed}.png"
                    write(path, buffer.getvalue())
                    paths.append(path)
        finally:
            unet.train()
        return paths

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


def export_kohya(lora_path: Path, out_path: Path) -> Path:
    """Convert a diffusers-format LoRA file to the kohya format (``lora_unet_…lora_down/up`` + alpha)."""
    from diffusers.utils import convert_state_dict_to_kohya
    from safetensors.torch import load_file, save

    from studio.storage import validate_safetensors

    validate_safetensors(lora_path)
    state = load_file(str(lora_path))
    peft_like = {
        k.replace(".lora.down.", ".lora_A.").replace(".lora.up.", ".lora_B."): v
        for k, v in state.items()
        if any(part in k for part in (".lora.down.", ".lora.up.", ".lora_A.", ".lora_B."))
    }
    if not peft_like:
        raise ValidationError(str(lora_path), "not a diffusers-format LoRA (no lora_A/lora_B keys)")
    kohya = {k: v.contiguous() for k, v in convert_state_dict_to_kohya(peft_like).items()}
    atomic_write_bytes(Path(out_path), save(kohya, metadata={"ss_network_module": "networks.lora"}))
    return Path(out_path)
