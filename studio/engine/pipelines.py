"""Pipeline cache: one base pipeline per (model, device, dtype); ControlNet, image-to-image and inpainting
pipelines via ``from_pipe``.

ControlNet, image-to-image and inpainting pipelines share every component of the base pipeline
(UNet/transformer, VAE, text encoders), so resident LoRA adapters apply to them too.  Several ControlNets
become a MultiControlNet.  With ``compile=True`` (GPU only) the denoiser is wrapped in ``torch.compile``
after ``enable_lora_hotswap(target_rank=...)``, so new LoRA weights are hot-swapped into the compiled graph
instead of recompiling it.
"""

from __future__ import annotations

import copy
import gc
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from studio.engine.adapters import AdapterManager, HotswapAdapters
from studio.engine.devices import DeviceChoice
from studio.engine.models import ResolvedModel, load_controlnet, load_pipeline, resolve_model
from studio.errors import ModelError

#: task → diffusers auto pipeline built ``from_pipe`` the base (or ControlNet) pipeline
TASKS = {"img2img": "AutoPipelineForImage2Image", "inpaint": "AutoPipelineForInpainting"}
_CONTROL_FAMILY = {"sd1": "sd", "sd2": "sd", "sdxl": "sd", "sd3": "sd3", "flux": "flux"}


@dataclass
class LoadedModel:
    """A base pipeline in memory, its scheduler config as shipped, its adapters and ControlNet variants."""

    model: ResolvedModel
    device: DeviceChoice
    pipe: Any
    scheduler_config: dict[str, Any]
    adapters: AdapterManager | HotswapAdapters
    compiled: bool = False
    control_pipes: OrderedDict[tuple[str, ...], Any] = field(default_factory=OrderedDict)
    #: image-to-image and inpainting variants, by (task, ControlNet refs)
    edit_pipes: dict[tuple[str, tuple[str, ...]], Any] = field(default_factory=dict)

    @property
    def denoiser(self) -> Any:
        """The UNet or transformer."""
        return getattr(self.pipe, "unet", None) or self.pipe.transformer


class PipelineCache:
    """Keeps at most ``max_models`` base pipelines (and their ControlNet variants) in memory."""

    def __init__(
        self,
        device: DeviceChoice,
        *,
        cache_dir: str | Path | None = None,
        max_models: int = 1,
        max_resident_loras: int = 8,
        max_controlnets: int = 4,
        compile: bool = False,
        compile_backend: str | None = None,
        hotswap_rank: int = 64,
        hotswap_slots: int = 2,
        loader: Callable[[ResolvedModel, str, Any], Any] = load_pipeline,
    ) -> None:
        if compile and not device.is_gpu and compile_backend is None:
            raise ModelError("torch.compile is only offered on a GPU (cuda or mps)")
        self.device = device
        self.cache_dir = cache_dir
        self.max_models = max(1, max_models)
        self.max_resident_loras = max_resident_loras
        self.max_controlnets = max(1, max_controlnets)
        self.compile = compile
        self.compile_backend = compile_backend
        self.hotswap_rank = hotswap_rank
        self.hotswap_slots = hotswap_slots
        self._loader = loader
        self._models: OrderedDict[tuple[str, str | None, str, str], LoadedModel] = OrderedDict()
        self._controlnets: OrderedDict[str, tuple[ResolvedModel, Any]] = OrderedDict()
        self._lock = threading.RLock()

    @property
    def max_loras_per_request(self) -> int:
        """How many LoRAs one request may use: the resident count, or the hotswap slots when compiled."""
        return self.hotswap_slots if self.compile else self.max_resident_loras

    def key(self, model: ResolvedModel) -> tuple[str, str | None, str, str]:
        return (str(model.path), model.content_hash, self.device.device, self.device.dtype_name)

    def get(self, model: ResolvedModel) -> LoadedModel:
        """The loaded base pipeline for ``model`` (loading it, and evicting the oldest, when needed)."""
        with self._lock:
            key = self.key(model)
            loaded = self._models.get(key)
            if loaded is not None:
                self._models.move_to_end(key)
                return loaded
            while len(self._models) >= self.max_models:
                _, old = self._models.popitem(last=False)
                self._release(old)
            pipe = self._loader(model, self.device.device, self.device.dtype)
            scheduler_config = copy.deepcopy(dict(pipe.scheduler.config))
            if self.compile:
                adapters: AdapterManager | HotswapAdapters = HotswapAdapters(
                    pipe, self.hotswap_slots, self.hotswap_rank, self.max_resident_loras
                )
            else:
                adapters = AdapterManager(pipe, self.max_resident_loras)
            loaded = LoadedModel(
                model=model,
                device=self.device,
                pipe=pipe,
                scheduler_config=scheduler_config,
                adapters=adapters,
            )
            if self.compile:
                self._compile(loaded)
            self._models[key] = loaded
            return loaded

    def _compile(self, loaded: LoadedModel) -> None:
        """Compile the denoiser in place (after the LoRA slots exist, so swaps never recompile)."""
        options: dict[str, Any] = {"fullgraph": True}
        if self.compile_backend is not None:
            options["backend"] = self.compile_backend
        loaded.denoiser.compile(**options)
        loaded.compiled = True

    def check_controlnet(self, ref: str, family: str) -> ResolvedModel:
        """Resolve a ControlNet reference (configs only) and check it fits a ``family`` base model."""
        resolved = resolve_model(ref, cache_dir=self.cache_dir, kind="controlnet")
        expected = _CONTROL_FAMILY[family]
        if resolved.family != expected:
            raise ModelError(f"{ref}: a {resolved.family} ControlNet does not fit this {family} base model")
        return resolved

    def controlnet(self, ref: str, family: str) -> tuple[ResolvedModel, Any]:
        """A ControlNet model (cached by reference), checked against the base model's family."""
        with self._lock:
            entry = self._controlnets.get(ref)
            if entry is None:
                resolved = self.check_controlnet(ref, family)
                entry = (resolved, load_controlnet(resolved, self.device.device, self.device.dtype))
                while len(self._controlnets) >= self.max_controlnets:
                    self._controlnets.popitem(last=False)
                self._controlnets[ref] = entry
            self._controlnets.move_to_end(ref)
            return entry

    def control_pipeline(self, loaded: LoadedModel, refs: Sequence[str]) -> Any:
        """A ControlNet pipeline sharing ``loaded``'s components (MultiControlNet for several refs)."""
        from diffusers import AutoPipelineForText2Image

        key = tuple(refs)
        with self._lock:
            pipe = loaded.control_pipes.get(key)
            if pipe is not None:
                loaded.control_pipes.move_to_end(key)
                return pipe
            nets = [self.controlnet(ref, loaded.model.family)[1] for ref in refs]
            _check_controlnet_fits(loaded, refs, nets)
            try:
                pipe = AutoPipelineForText2Image.from_pipe(loaded.pipe, controlnet=nets)
            except (ValueError, TypeError) as exc:
                raise ModelError(
                    f"cannot build a ControlNet pipeline for {loaded.model.ref}: {exc}"
                ) from None
            pipe.set_progress_bar_config(disable=True)
            while len(loaded.control_pipes) >= self.max_controlnets:
                loaded.control_pipes.popitem(last=False)
            loaded.control_pipes[key] = pipe
            return pipe

    def pipeline_for(self, loaded: LoadedModel, task: str, refs: Sequence[str] = ()) -> Any:
        """The pipeline for ``task`` on ``loaded``: ``text2img`` is the base pipeline (or its ControlNet
        variant for ``refs``); ``img2img`` and ``inpaint`` are diffusers' AutoPipelineForImage2Image /
        AutoPipelineForInpainting built ``from_pipe`` that one, sharing its components (cached)."""
        base = self.control_pipeline(loaded, refs) if refs else loaded.pipe
        if task == "text2img":
            return base
        if task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, not {task!r}")
        key = (task, tuple(refs))
        with self._lock:
            pipe = loaded.edit_pipes.get(key)
            if pipe is not None:
                return pipe
            import diffusers

            auto = getattr(diffusers, TASKS[task])
            try:
                pipe = auto.from_pipe(base)
            except (ValueError, TypeError, KeyError) as exc:
                what = f"{task} with ControlNet" if refs else task
                raise ModelError(
                    f"{loaded.model.ref} ({loaded.model.family}) has no {what} pipeline in diffusers: {exc}"
                ) from None
            pipe.set_progress_bar_config(disable=True)
            if len(loaded.edit_pipes) >= 2 * self.max_controlnets + 2:
                loaded.edit_pipes.pop(next(iter(loaded.edit_pipes)))
            loaded.edit_pipes[key] = pipe
            return pipe

    def clear(self) -> None:
        """Drop every pipeline and ControlNet (frees memory; the next request loads again)."""
        with self._lock:
            for loaded in self._models.values():
                self._release(loaded)
            self._models.clear()
            self._controlnets.clear()
        free_memory(self.device)

    def reset_compiled(self) -> None:
        """Forget compiled graphs (after an out-of-memory error), keeping the pipelines."""
        if any(loaded.compiled for loaded in self._models.values()):
            torch._dynamo.reset()

    @staticmethod
    def _release(loaded: LoadedModel) -> None:
        loaded.control_pipes.clear()
        loaded.edit_pipes.clear()
        loaded.pipe = None


def _check_controlnet_fits(loaded: LoadedModel, refs: Sequence[str], nets: Sequence[Any]) -> None:
    base_dim = getattr(loaded.denoiser.config, "cross_attention_dim", None)
    for ref, net in zip(refs, nets, strict=True):
        dim = getattr(net.config, "cross_attention_dim", None)
        if base_dim is not None and dim is not None and dim != base_dim:
            raise ModelError(
                f"{ref}: ControlNet does not fit {loaded.model.ref} (cross-attention {dim} vs {base_dim})"
            )


def free_memory(device: DeviceChoice) -> None:
    """Collect garbage and return cached accelerator memory to the driver."""
    gc.collect()
    if device.device == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif device.device == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()
