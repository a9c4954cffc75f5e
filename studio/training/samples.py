"""The images a checkpoint keeps: the fixed sample prompts and seeds drawn with the LoRA, and, for the
quality gate, the same without the trigger word and without the LoRA (those once per job).

A mixin of :class:`~studio.training.trainer.LoraTrainer`: it draws with the trainer's pipeline and the
prompts' cached embeddings, so the text encoders are not needed after caching. Each PNG goes through the
trainer's ``sign_sample`` (Content Credentials, given by the worker that runs the job) before it is written.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from studio.storage import atomic_write_bytes

#: the samples folder of the images drawn without the LoRA (once per job)
BASELINE_FOLDER = "baseline"
#: ``sign(png, facts)``: the PNG with Content Credentials; ``facts`` says which sample it is (step, prompt
#: number, seed, ``lora`` and ``trigger`` on or off, the checkpoint's ``lora_sha256``)
SampleSigner = Callable[[bytes, dict[str, Any]], bytes]


class CheckpointSamples:
    """Sample and quality-gate images; uses the trainer's ``pipe``, ``denoiser``, ``config``, ``cache``,
    ``device``, ``weight_dtype``, ``resolution``, ``samples_dir``, ``plain_samples``,
    ``takes_negative_embeds``, ``sign_sample`` and ``checkpoint_sha256``."""

    # provided by LoraTrainer
    pipe: Any
    config: Any
    cache: Any
    device: str
    weight_dtype: torch.dtype
    samples_dir: Path
    plain_samples: dict[str, torch.Tensor]
    takes_negative_embeds: bool
    _baseline: dict[str, tuple[Path, ...]] | None
    denoiser: Any
    resolution: int
    sign_sample: SampleSigner | None
    checkpoint_sha256: str | None  # the LoRA file of the checkpoint being sampled

    def sample_kwargs(self, cond: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
        """Pipeline arguments for the checkpoint samples: guidance and the prompts' cached embeddings
        (``cond``, default: the sample prompts with the trigger), so the text encoders are not needed (nor
        kept on the GPU) after caching."""
        assert self.cache is not None
        kwargs: dict[str, Any] = {"guidance_scale": self.config.sample_cfg}
        cond = self.cache.samples if cond is None else cond
        count = len(self.config.sample_prompts)
        names = {"embeds": "prompt_embeds", "pooled": "pooled_prompt_embeds"}
        for key, tensor in cond.items():
            kwargs[names[key]] = tensor.to(self.device, self.weight_dtype)
            if self.takes_negative_embeds:
                empty = self.cache.empty[key].expand(count, *tensor.shape[1:])
                kwargs[f"negative_{names[key]}"] = empty.to(self.device, self.weight_dtype)
        return kwargs

    def sample_images(self, step: int) -> list[Path]:
        """Images from the fixed sample prompts and seeds, with the LoRA as it is now."""
        return self.render(self.samples_dir / f"step-{step:06d}", "")

    @torch.no_grad()
    def render(
        self, folder: Path, suffix: str, cond: dict[str, torch.Tensor] | None = None, *, lora: bool = True
    ) -> list[Path]:
        """Draw the sample prompts (``cond``: their embeddings, default with the trigger) at every sample seed
        into ``folder`` as ``p<prompt>-s<seed><suffix>.png``, seed by seed; ``lora=False`` draws with the
        LoRA disabled (peft's ``disable_adapters``: the LoRA layers return their base layer's output, so
        these are exactly the base model's pixels)."""
        denoiser = self.denoiser
        denoiser.eval()
        count = len(self.config.sample_prompts)
        paths = []
        if not lora:
            denoiser.disable_adapters()
        try:
            for seed in self.config.sample_seeds:
                with torch.autocast(
                    device_type="cuda" if self.device == "cuda" else "cpu",
                    dtype=self.weight_dtype,
                    enabled=self.weight_dtype != torch.float32,
                ):
                    images = self.pipe(
                        num_inference_steps=self.config.sample_steps,
                        height=self.resolution,
                        width=self.resolution,
                        generator=[torch.Generator().manual_seed(seed) for _ in range(count)],
                        **self.sample_kwargs(cond),
                    ).images
                for number, image in enumerate(images):
                    buffer = io.BytesIO()
                    image.save(buffer, format="PNG")
                    path = folder / f"p{number}-s{seed}{suffix}.png"
                    atomic_write_bytes(path, self.signed(buffer.getvalue(), path, number, seed, lora))
                    paths.append(path)
        finally:
            if not lora:
                denoiser.enable_adapters()  # also makes the LoRA weights trainable again
            denoiser.train()
        return paths

    def signed(self, png: bytes, path: Path, number: int, seed: int, lora: bool) -> bytes:
        """``png`` through ``sign_sample`` (unchanged without one), told which sample it is."""
        if self.sign_sample is None:
            return png
        facts = {
            "sample": f"{path.parent.name}/{path.name}",
            "prompt_number": number,
            "seed": seed,
            "lora": lora,
            "trigger": not path.stem.endswith("-plain"),
            "lora_sha256": self.checkpoint_sha256 if lora else None,
            "steps": self.config.sample_steps,
            "guidance_scale": self.config.sample_cfg,
            "width": self.resolution,
            "height": self.resolution,
        }
        return self.sign_sample(png, facts)

    def quality_images(self, step: int, samples: tuple[Path, ...]) -> dict[str, tuple[Path, ...]]:
        """The quality gate's images of a checkpoint, each set in the samples' order (seed by seed, prompt by
        prompt): ``lora`` (the samples), ``lora_plain`` (no trigger word), and ``base`` / ``base_plain``
        (the LoRA disabled). The base images are drawn once per job and found on disk after a resume."""
        folder = self.samples_dir / f"step-{step:06d}"
        plain = tuple(self.render(folder, "-plain", self.plain_samples))
        return {"lora": samples, "lora_plain": plain, **self.baseline_images()}

    def baseline_images(self) -> dict[str, tuple[Path, ...]]:
        """The sample prompts (with and without the trigger) drawn without the LoRA, once per job."""
        if self._baseline is None:
            folder = self.samples_dir / BASELINE_FOLDER
            count = len(self.config.sample_prompts)
            names = [f"p{n}-s{seed}" for seed in self.config.sample_seeds for n in range(count)]
            found = {
                key: tuple(folder / f"{name}{suffix}.png" for name in names)
                for key, suffix in (("base", ""), ("base_plain", "-plain"))
            }
            if not all(p.is_file() for paths in found.values() for p in paths):  # a resumed job has them
                found = {
                    "base": tuple(self.render(folder, "", lora=False)),
                    "base_plain": tuple(self.render(folder, "-plain", self.plain_samples, lora=False)),
                }
            self._baseline = found
        return self._baseline
