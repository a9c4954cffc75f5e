"""The engine's front door: validate a :class:`~studio.engine.request.GenerationRequest`, generate, return
images with recipes.

Example::

    engine = Engine("embedded:toyworld", device="auto")
    images = engine.generate(GenerationRequest(prompt="a red circle", seed=42), progress=print)
    images[0].image.save("out.png", pnginfo=png_metadata(images[0].recipe))

Everything is checked before anything runs, each problem a ValidationError naming the field: the request's
own limits (:mod:`studio.engine.request`), and width/height a multiple of :attr:`ModelInfo.size_multiple`
between that multiple and 4096, the sampler, the LoRA files and the control maps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from studio.engine import samplers as sampler_registry
from studio.engine.a1111 import model_hash
from studio.engine.adapters import AdapterManager, AdapterSpec
from studio.engine.batch_invariant import batch_invariant as invariant_kernels
from studio.engine.control import fit_to_size, image_sha256, load_image
from studio.engine.devices import DeviceChoice, choose_device
from studio.engine.guidance import PLAIN, guided
from studio.engine.kohya_files import a1111_lora_hash
from studio.engine.limits import MAX_BATCH, MAX_SIDE
from studio.engine.model_info import ModelInfo, read_model_info
from studio.engine.models import ResolvedModel, resolve_model
from studio.engine.pipelines import LoadedModel, PipelineCache, free_memory
from studio.engine.recipe import (
    INVARIANT_KERNELS,
    KERNELS,
    PLAIN_KERNELS,
    ControlEntry,
    LoraEntry,
    Recipe,
    library_versions,
)
from studio.engine.request import (
    GenerationRequest,
    LoraSpec,
    ProgressCallback,
    check_controls,
    check_guidance,
    check_numbers,
    check_prompts,
    check_seed,
    integer,
    number,
    recipe_settings,
)
from studio.engine.tokens import TokenCount, count_tokens, known_words
from studio.errors import CancelledError, ModelError, NotFoundError, ValidationError


class GenerationCancelled(CancelledError):
    """The request was cancelled (within one denoising step).

    ``images`` holds the images of the batch that were finished before the cancel (with their recipes;
    empty when none was), ``requested`` the batch size asked for."""

    def __init__(self, message: str, images: tuple[GeneratedImage, ...] = (), requested: int = 0) -> None:
        super().__init__(message)
        self.images = images
        self.requested = requested


@dataclass(frozen=True)
class GeneratedImage:
    """One output image, the seed that made it and the full recipe to make it again."""

    image: Image.Image
    seed: int
    recipe: Recipe
    index: int = 0


@dataclass(frozen=True)
class Prepared:
    """A checked request with its seed, sampler, size and control maps (fitted to the size) filled in."""

    request: GenerationRequest
    seed: int
    sampler: str
    width: int
    height: int
    control_maps: tuple[Image.Image, ...]


class Engine:
    """Generates images from requests; holds the pipeline cache and resident LoRAs.

    ``base_model``: default model reference (``embedded:toyworld``, a folder or a cached hub repo id).
    ``device``: auto|cpu|cuda|mps.  ``compile``: torch.compile the denoiser (GPU only, unless a
    ``compile_backend`` such as ``"eager"`` is named) with ``hotswap_slots`` LoRA slots of rank
    ``hotswap_rank`` that brand switches hot-swap into without recompiling (see
    :class:`~studio.engine.adapters.HotswapAdapters`).  ``batch_invariant``: requests that name no
    ``kernels`` run with the :mod:`~studio.engine.batch_invariant` kernels, so that an image is the same
    alone or in a batch of requests (:mod:`~studio.engine.batching`); otherwise with the plain ones, which
    are faster alone. The recipe records which, and a request from a recipe uses the same.  Generations
    are serialised by an internal lock; the engine is safe to share between threads.
    """

    def __init__(
        self,
        base_model: str = "embedded:toyworld",
        device: str | DeviceChoice = "auto",
        *,
        cache_dir: str | Path | None = None,
        max_resident_loras: int = 8,
        max_batch: int = MAX_BATCH,
        compile: bool = False,
        compile_backend: str | None = None,
        hotswap_rank: int = 64,
        hotswap_slots: int = 2,
        batch_invariant: bool = False,
    ) -> None:
        self.base_model = base_model
        self.batch_invariant = batch_invariant
        self.device = device if isinstance(device, DeviceChoice) else choose_device(device)
        self.cache_dir = cache_dir
        self.max_batch = max_batch
        self.pipelines = PipelineCache(
            self.device,
            cache_dir=cache_dir,
            max_resident_loras=max_resident_loras,
            compile=compile,
            compile_backend=compile_backend,
            hotswap_rank=hotswap_rank,
            hotswap_slots=hotswap_slots,
        )
        self._resolved: dict[tuple[str, str | None], tuple[ResolvedModel, ModelInfo]] = {}
        self._lock = threading.RLock()

    # ----------------------------------------------------------------------------------------- models
    def resolve(
        self, model: str | None = None, revision: str | None = None
    ) -> tuple[ResolvedModel, ModelInfo]:
        """Resolve a model reference (default: the engine's base model) and read what it accepts."""
        ref = model or self.base_model
        key = (ref, revision)
        entry = self._resolved.get(key)
        if entry is None:
            resolved = resolve_model(ref, revision=revision, cache_dir=self.cache_dir)
            entry = (resolved, read_model_info(resolved))
            self._resolved[key] = entry
        return entry

    def model_info(self, model: str | None = None, revision: str | None = None) -> ModelInfo:
        return self.resolve(model, revision)[1]

    def count_tokens(self, text: str, model: str | None = None) -> TokenCount:
        """How many tokens of ``text`` the model's text encoders read, from its tokenizer files only (see
        :mod:`studio.engine.tokens`)."""
        resolved, info = self.resolve(model)
        return count_tokens(resolved.path, info.family, text)

    def known_words(self, model: str | None = None) -> tuple[str, ...] | None:
        """The words an embedded model was trained on; None for other models."""
        return known_words(model or self.base_model)

    def load(self, model: str | None = None, revision: str | None = None) -> LoadedModel:
        """Load (or fetch from the cache) the base pipeline for ``model``."""
        return self.pipelines.get(self.resolve(model, revision)[0])

    def clear_cache(self) -> None:
        """Unload every pipeline, ControlNet and LoRA (model folders are resolved and hashed again)."""
        with self._lock:
            self.pipelines.clear()
            self._resolved.clear()

    def check_controlnet(
        self, ref: str | None, model: str | None = None, field: str = "controlnet_model"
    ) -> str | None:
        """Normalise a ControlNet reference for ``model`` (default: the base model): blank → None (the
        model's own); otherwise it must resolve to a ControlNet of the model's family, else a
        ValidationError naming ``field``.  Reads configs only; the weights load on first use."""
        text = str(ref or "").strip()
        if not text:
            return None
        family = self.model_info(model).family
        try:
            self.pipelines.check_controlnet(text, family)
        except (ModelError, NotFoundError) as exc:
            raise ValidationError(field, f"ControlNet {text!r} cannot be used: {exc}") from None
        return text

    # ------------------------------------------------------------------------------------- validation
    def validate(self, request: GenerationRequest) -> GenerationRequest:
        """Check ``request`` and return it with seed, sampler and size filled in."""
        return self.prepare(request).request

    def prepare(self, request: GenerationRequest) -> Prepared:
        """Check ``request`` (every refusal before anything runs) and fill in what it leaves open."""
        info = self.model_info(request.model, request.model_revision)
        prompt = check_prompts(request)
        cfg, steps, batch = check_numbers(request, self.max_batch)
        width = info.default_width if request.width is None else integer("width", request.width)
        height = info.default_height if request.height is None else integer("height", request.height)
        for name, value in (("width", width), ("height", height)):
            multiple = info.size_multiple
            if value % multiple or not multiple <= value <= MAX_SIDE:
                raise ValidationError(
                    name,
                    f"{value} is not accepted: use a multiple of {multiple} "
                    f"between {multiple} and {MAX_SIDE}",
                )
        seed = check_seed(request.seed)
        sampler_name = request.sampler or info.default_sampler
        sampler = sampler_registry.check_sampler(sampler_name, info.scheduler_config)
        AdapterManager.validate(
            [_adapter_spec(spec, i) for i, spec in enumerate(request.loras)],
            self.pipelines.max_loras_per_request,
        )
        maps = self._control_maps(request, width, height)
        guidance = check_guidance(request.guidance, info.family)
        kernels = request.kernels or (INVARIANT_KERNELS if self.batch_invariant else PLAIN_KERNELS)
        if kernels not in KERNELS:
            raise ValidationError("kernels", f"must be one of {', '.join(KERNELS)}, not {kernels!r}")
        filled = replace(
            request,
            prompt=prompt,
            negative_prompt=request.negative_prompt or "",
            guidance_scale=cfg,
            num_inference_steps=steps,
            batch_size=batch,
            width=width,
            height=height,
            seed=seed,
            sampler=sampler,
            prompt_typed=prompt if request.prompt_typed is None else request.prompt_typed,
            guidance=guidance,
            kernels=kernels,
        )
        return Prepared(filled, seed, sampler, width, height, maps)

    @staticmethod
    def _control_maps(request: GenerationRequest, width: int, height: int) -> tuple[Image.Image, ...]:
        check_controls(request.controls)
        maps = []
        for index, unit in enumerate(request.controls):
            maps.append(fit_to_size(load_image(unit.image, f"controls[{index}].image"), width, height))
        return tuple(maps)

    # ------------------------------------------------------------------------------------- generation
    def generate(
        self,
        request: GenerationRequest,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> list[GeneratedImage]:
        """Generate ``request.batch_size`` images (seeds seed, seed+1, …), one pipeline call per image.

        ``progress(step, total)`` is called after each denoising step, counting over the whole batch
        (total = steps × batch_size); setting ``cancel`` stops the run
        within one step and raises :class:`GenerationCancelled`, which carries the images of the batch
        finished before it.  Out-of-memory becomes a ModelError after
        the caches are freed, so the next request works.
        """
        prepared = self.prepare(request)
        req = prepared.request
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled("generation cancelled before it started")
        with self.pipeline(prepared) as (pipe, loaded, info):
            images: list[Image.Image] = []
            try:
                for index in range(req.batch_size):
                    kwargs = self.call_kwargs(prepared, info, index, progress, cancel)
                    images.append(self.call(pipe, prepared, kwargs, index, cancel))
            except GenerationCancelled as cancelled:  # the finished images go with it
                raise GenerationCancelled(
                    str(cancelled), tuple(self.results(prepared, loaded, images)), req.batch_size
                ) from None
        return self.results(prepared, loaded, images)

    @contextmanager
    def pipeline(
        self, prepared: Prepared, task: str = "text2img"
    ) -> Iterator[tuple[Any, LoadedModel, ModelInfo]]:
        """Hold the engine's lock and yield ``(pipe, loaded, info)``: the resident pipeline for ``task``
        (text2img, img2img or inpaint; with the request's ControlNets; see
        :meth:`~studio.engine.pipelines.PipelineCache.pipeline_for`) with the request's LoRAs active and its
        sampler set. Every variant shares the base pipeline's components: there is one copy of the model."""
        req = prepared.request
        with self._lock:
            resolved, info = self.resolve(req.model, req.model_revision)
            loaded = self.pipelines.get(resolved)
            loaded.adapters.activate([_adapter_spec(spec, i) for i, spec in enumerate(req.loras)])
            pipe = self.pipelines.pipeline_for(loaded, task, [unit.controlnet for unit in req.controls])
            pipe.scheduler = sampler_registry.make_scheduler(prepared.sampler, loaded.scheduler_config)
            yield pipe, loaded, info

    def call(
        self,
        pipe: Any,
        prepared: Prepared,
        kwargs: dict[str, Any],
        index: int = 0,
        cancel: threading.Event | None = None,
    ) -> Image.Image:
        """One pipeline call for one image (its own seeded generator: same recipe, same pixels) under the
        request's guidance; out of memory becomes a ModelError after the caches are freed; a cancel raises
        :class:`GenerationCancelled`. Call it inside :meth:`pipeline`."""
        what = f"image {index + 1} of {prepared.request.batch_size}"
        return self.call_images(pipe, prepared, kwargs, cancel, what)[0]

    def call_images(
        self,
        pipe: Any,
        prepared: Prepared,
        kwargs: dict[str, Any],
        cancel: threading.Event | None = None,
        what: str = "",
    ) -> list[Image.Image]:
        """:meth:`call` for any number of images (a batch: lists of prompts and generators in ``kwargs``);
        ``what`` names them in a cancel's message."""
        req = prepared.request
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled("generation cancelled")
        try:
            with (
                invariant_kernels(enabled=req.kernels == INVARIANT_KERNELS),
                guided(pipe, req.guidance or PLAIN, float(req.guidance_scale)),
            ):
                output = pipe(**kwargs)
        except (torch.cuda.OutOfMemoryError, MemoryError) as exc:
            self._recover_from_oom()
            raise ModelError(
                f"out of memory generating {prepared.width}x{prepared.height} on {self.device.device}; "
                f"caches were freed — try a smaller size ({type(exc).__name__})"
            ) from None
        except RuntimeError as exc:
            if "out of memory" not in str(exc).lower():
                raise
            self._recover_from_oom()
            raise ModelError(
                f"out of memory on {self.device.device}; caches were freed — try a smaller size"
            ) from None
        if getattr(pipe, "_interrupt", False) or (cancel is not None and cancel.is_set()):
            pipe._interrupt = False
            raise GenerationCancelled(f"generation cancelled ({what})" if what else "generation cancelled")
        return list(output.images)

    def call_kwargs(
        self,
        prepared: Prepared,
        info: ModelInfo,
        index: int,
        progress: ProgressCallback | None,
        cancel: threading.Event | None,
    ) -> dict[str, Any]:
        """The pipeline arguments for image ``index`` of ``prepared`` (its seed ``seed + index``)."""
        req = prepared.request
        steps = int(req.num_inference_steps or 0)
        kwargs: dict[str, Any] = {
            "prompt": req.prompt,
            "guidance_scale": float(req.guidance_scale),
            "num_inference_steps": steps,
            "width": prepared.width,
            "height": prepared.height,
            "num_images_per_prompt": 1,
            "generator": torch.Generator("cpu").manual_seed(prepared.seed + index),
            "callback_on_step_end": step_callback(
                progress, cancel, steps * index, steps, steps * req.batch_size
            ),
            "output_type": "pil",
        }
        if info.supports_negative_prompt:
            kwargs["negative_prompt"] = req.negative_prompt or None
        if req.controls:
            kwargs["control_image" if info.family in ("sd3", "flux") else "image"] = list(
                prepared.control_maps
            )
            kwargs["controlnet_conditioning_scale"] = [float(unit.scale) for unit in req.controls]
            kwargs["control_guidance_start"] = [float(unit.start) for unit in req.controls]
            kwargs["control_guidance_end"] = [float(unit.end) for unit in req.controls]
        return kwargs

    def _recover_from_oom(self) -> None:
        self.pipelines.reset_compiled()
        free_memory(self.device)

    def results(
        self, prepared: Prepared, loaded: LoadedModel, images: list[Image.Image]
    ) -> list[GeneratedImage]:
        """The images of a batch with their recipes (image ``i`` has seed ``prepared.seed + i``)."""
        req = prepared.request
        model = loaded.model
        loras = tuple(
            LoraEntry(
                name=spec.name,
                sha256=spec.sha256 or loaded.adapters.sha256_of(spec.name) or "",
                weight=float(spec.weight),
                version_id=spec.version_id,
                a1111_hash=a1111_lora_hash(spec.path, model.family, model.path, spec.sha256),
            )
            for spec in req.loras
        )
        controls = tuple(
            ControlEntry(
                controlnet=unit.controlnet,
                control_image_sha256=unit.image_sha256 or image_sha256(control_map),
                scale=float(unit.scale),
                start=float(unit.start),
                end=float(unit.end),
                template_id=unit.template_id,
            )
            for unit, control_map in zip(req.controls, prepared.control_maps, strict=True)
        )
        versions = library_versions()
        a1111_hash_of_model = model_hash(model.path, model.family)
        results = []
        for index, image in enumerate(images):
            seed = prepared.seed + index
            recipe = Recipe(
                base_model=model.ref,
                base_model_revision=model.revision,
                base_model_hash=model.content_hash,
                a1111_model_hash=a1111_hash_of_model,
                family=model.family,
                **recipe_settings(replace(req, seed=seed)),  # the request's fields under the recipe's keys
                loras=loras,
                controls=controls,
                versions=versions,
            )
            results.append(GeneratedImage(image=image.convert("RGB"), seed=seed, recipe=recipe, index=index))
        return results


def step_callback(
    progress: ProgressCallback | None, cancel: threading.Event | None, done: int, steps: int, total: int
) -> Callable[..., dict[str, Any]]:
    """A ``callback_on_step_end`` that reports ``progress(done + step, total)`` (at most ``done + steps``) and
    interrupts the pipeline within one step when ``cancel`` is set."""

    def on_step_end(
        pipeline: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        if progress is not None:
            progress(done + min(step + 1, steps), total)
        if cancel is not None and cancel.is_set():
            pipeline._interrupt = True
        return callback_kwargs

    return on_step_end


def _adapter_spec(spec: LoraSpec, index: int) -> AdapterSpec:
    if not isinstance(spec.path, str | Path) or not str(spec.path):
        raise ValidationError(f"loras[{index}].path", "must name a .safetensors file")
    weight = number(f"loras[{index}].weight", spec.weight)
    return AdapterSpec(name=str(spec.name), path=Path(spec.path), sha256=spec.sha256, weight=weight)
