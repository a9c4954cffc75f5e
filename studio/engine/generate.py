"""The engine's front door: validate a :class:`GenerationRequest`, generate, return images with recipes.

Example::

    engine = Engine("embedded:toyworld", device="auto")
    images = engine.generate(GenerationRequest(prompt="a red circle", seed=42), progress=print)
    images[0].image.save("out.png", pnginfo=png_metadata(images[0].recipe))

Limits (checked before anything runs, each a ValidationError naming the field): prompt 1-2000 characters,
``guidance_scale`` 1-30, ``num_inference_steps`` 1-150, ``batch_size`` 1-``max_batch`` (8), width/height a
multiple of :attr:`ModelInfo.size_multiple` between that multiple and 4096, LoRA weights 0-1.5, at most 4
ControlNet units with scale 0-2 and 0 ≤ start < end ≤ 1, seed 0-2**32-1 (None = random, always recorded).
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from studio.engine import samplers as sampler_registry
from studio.engine.a1111 import model_hash
from studio.engine.adapters import AdapterManager, AdapterSpec
from studio.engine.control import fit_to_size, image_sha256, load_image
from studio.engine.devices import DeviceChoice, choose_device
from studio.engine.guidance import PLAIN, Guidance, guided
from studio.engine.kohya_files import a1111_lora_hash
from studio.engine.limits import (  # noqa: F401 (re-exported: the limits were defined here)
    MAX_BATCH,
    MAX_CFG,
    MAX_CONTROLS,
    MAX_PROMPT_CHARS,
    MAX_SEED,
    MAX_SIDE,
    MAX_STEPS,
    MIN_CFG,
)
from studio.engine.models import ResolvedModel, resolve_model
from studio.engine.pipelines import LoadedModel, PipelineCache, free_memory
from studio.engine.recipe import ControlEntry, LoraEntry, Recipe, library_versions
from studio.engine.tokens import TokenCount, count_tokens, known_words
from studio.errors import CancelledError, ModelError, NotFoundError, ValidationError

ProgressCallback = Callable[[int, int], None]


class GenerationCancelled(CancelledError):
    """The request was cancelled (within one denoising step).

    ``images`` holds the images of the batch that were finished before the cancel (with their recipes;
    empty when none was), ``requested`` the batch size asked for."""

    def __init__(
        self, message: str, images: tuple[GeneratedImage, ...] = (), requested: int = 0
    ) -> None:
        super().__init__(message)
        self.images = images
        self.requested = requested


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA to apply: adapter name, ``.safetensors`` path, expected sha256 (None = not checked), weight."""

    name: str
    path: str | Path
    sha256: str | None = None
    weight: float = 1.0
    version_id: str | None = None


@dataclass(frozen=True)
class ControlSpec:
    """A ControlNet unit: ControlNet reference, control map (PIL image or file), scale, guidance start/end.

    ``image_sha256`` is recorded in the recipe (default: the hash of the control map's pixels).
    """

    controlnet: str
    image: Image.Image | str | Path | bytes
    scale: float = 1.0
    start: float = 0.0
    end: float = 1.0
    template_id: str | None = None
    image_sha256: str | None = None


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate.  Names follow diffusers; ``None`` means the model's default (seed: random)."""

    prompt: str
    negative_prompt: str = ""
    guidance_scale: float = 7.0
    num_inference_steps: int = 20
    seed: int | None = None
    sampler: str | None = None
    width: int | None = None
    height: int | None = None
    batch_size: int = 1
    loras: tuple[LoraSpec, ...] = ()
    controls: tuple[ControlSpec, ...] = ()
    prompt_typed: str | None = None
    model: str | None = None
    model_revision: str | None = None
    guidance: Guidance | None = None  # None = plain CFG (studio.engine.guidance)

    def __post_init__(self) -> None:
        # accept plain tuples/lists as documented: (name, path, sha256, weight) and
        # (controlnet, image, scale, start, end)
        loras = tuple(item if isinstance(item, LoraSpec) else LoraSpec(*item) for item in self.loras)
        controls = tuple(
            item if isinstance(item, ControlSpec) else ControlSpec(*item) for item in self.controls
        )
        object.__setattr__(self, "loras", loras)
        object.__setattr__(self, "controls", controls)
        if isinstance(self.guidance, dict):
            object.__setattr__(self, "guidance", Guidance.from_dict(self.guidance))


@dataclass(frozen=True)
class GeneratedImage:
    """One output image, the seed that made it and the full recipe to make it again."""

    image: Image.Image
    seed: int
    recipe: Recipe
    index: int = 0


@dataclass(frozen=True)
class ModelInfo:
    """What a base model accepts, read from its configs (no weights loaded)."""

    ref: str
    family: str
    revision: str | None
    content_hash: str | None
    size_multiple: int
    default_width: int
    default_height: int
    samplers: tuple[str, ...]
    default_sampler: str
    supports_negative_prompt: bool
    scheduler_config: dict[str, Any] = field(repr=False, default_factory=dict)


def _config(path: Path, component: str, filename: str) -> dict[str, Any]:
    file = path / component / filename
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path.name}: cannot read {component}/{filename} ({exc})") from None


def read_model_info(model: ResolvedModel) -> ModelInfo:
    """Size multiple, default size and samplers of a resolved base model, from its config files."""
    vae = _config(model.path, "vae", "config.json")
    vae_scale = 2 ** (len(vae.get("block_out_channels", [0, 0, 0, 0])) - 1)
    scheduler = _config(model.path, "scheduler", "scheduler_config.json")
    if model.family in ("sd1", "sd2", "sdxl"):
        unet = _config(model.path, "unet", "config.json")
        multiple = vae_scale * 2 ** (len(unet.get("down_block_types", [0])) - 1)
        sample = unet.get("sample_size", 64)
    else:
        transformer = _config(model.path, "transformer", "config.json")
        patch = int(transformer.get("patch_size", 2))
        multiple = vae_scale * patch * (2 if model.family == "flux" else 1)
        sample = transformer.get("sample_size", 128) if model.family == "sd3" else 128
    sample = sample[0] if isinstance(sample, list | tuple) else sample
    default = max(multiple, int(sample) * vae_scale // multiple * multiple)
    return ModelInfo(
        ref=model.ref,
        family=model.family,
        revision=model.revision,
        content_hash=model.content_hash,
        size_multiple=multiple,
        default_width=default,
        default_height=default,
        samplers=tuple(sampler_registry.available_samplers(scheduler)),
        default_sampler=sampler_registry.default_sampler(scheduler),
        supports_negative_prompt=model.family != "flux",
        scheduler_config=scheduler,
    )


@dataclass(frozen=True)
class _Prepared:
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
    :class:`~studio.engine.adapters.HotswapAdapters`).  Generations are serialised by an internal lock;
    the engine is safe to share between threads.
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
    ) -> None:
        self.base_model = base_model
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
        return self._prepare(request).request

    def _prepare(self, request: GenerationRequest) -> _Prepared:
        info = self.model_info(request.model, request.model_revision)
        prompt = request.prompt if isinstance(request.prompt, str) else ""
        if not prompt.strip():
            raise ValidationError("prompt", "must not be empty")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise ValidationError("prompt", f"is longer than {MAX_PROMPT_CHARS} characters")
        if len(request.negative_prompt or "") > MAX_PROMPT_CHARS:
            raise ValidationError("negative_prompt", f"is longer than {MAX_PROMPT_CHARS} characters")
        cfg = _number("guidance_scale", request.guidance_scale)
        if not MIN_CFG <= cfg <= MAX_CFG:
            raise ValidationError("guidance_scale", f"{cfg:g} is outside {MIN_CFG:g}-{MAX_CFG:g}")
        steps = _integer("num_inference_steps", request.num_inference_steps)
        if not 1 <= steps <= MAX_STEPS:
            raise ValidationError("num_inference_steps", f"{steps} is outside 1-{MAX_STEPS}")
        batch = _integer("batch_size", request.batch_size)
        if not 1 <= batch <= self.max_batch:
            raise ValidationError("batch_size", f"{batch} is outside 1-{self.max_batch}")
        width = info.default_width if request.width is None else _integer("width", request.width)
        height = info.default_height if request.height is None else _integer("height", request.height)
        for name, value in (("width", width), ("height", height)):
            multiple = info.size_multiple
            if value % multiple or not multiple <= value <= MAX_SIDE:
                raise ValidationError(
                    name,
                    f"{value} is not accepted: use a multiple of {multiple} "
                    f"between {multiple} and {MAX_SIDE}",
                )
        seed = secrets.randbelow(MAX_SEED + 1) if request.seed is None else _integer("seed", request.seed)
        if not 0 <= seed <= MAX_SEED:
            raise ValidationError("seed", f"{seed} is outside 0-{MAX_SEED}")
        sampler_name = request.sampler or info.default_sampler
        sampler = sampler_registry.check_sampler(sampler_name, info.scheduler_config)
        AdapterManager.validate(
            [_adapter_spec(spec, i) for i, spec in enumerate(request.loras)],
            self.pipelines.max_loras_per_request,
        )
        maps = self._control_maps(request, width, height)
        guidance = _check_guidance(request.guidance, info.family)
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
        )
        return _Prepared(filled, seed, sampler, width, height, maps)

    @staticmethod
    def _control_maps(request: GenerationRequest, width: int, height: int) -> tuple[Image.Image, ...]:
        if len(request.controls) > MAX_CONTROLS:
            raise ValidationError(
                "controls", f"at most {MAX_CONTROLS} ControlNet units, got {len(request.controls)}"
            )
        maps = []
        for index, unit in enumerate(request.controls):
            field_name = f"controls[{index}]"
            scale = _number(f"{field_name}.scale", unit.scale)
            start = _number(f"{field_name}.start", unit.start)
            end = _number(f"{field_name}.end", unit.end)
            if not 0.0 <= scale <= 2.0:
                raise ValidationError(f"{field_name}.scale", f"{scale:g} is outside 0-2")
            if not 0.0 <= start < end <= 1.0:
                raise ValidationError(f"{field_name}.start", "guidance window needs 0 ≤ start < end ≤ 1")
            if not str(unit.controlnet or "").strip():
                raise ValidationError(f"{field_name}.controlnet", "must name a ControlNet model")
            maps.append(fit_to_size(load_image(unit.image, f"{field_name}.image"), width, height))
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
        prepared = self._prepare(request)
        req = prepared.request
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled("generation cancelled before it started")
        with self._lock:
            resolved, info = self.resolve(req.model, req.model_revision)
            loaded = self.pipelines.get(resolved)
            loaded.adapters.activate([_adapter_spec(spec, i) for i, spec in enumerate(req.loras)])
            if req.controls:
                pipe = self.pipelines.control_pipeline(loaded, [unit.controlnet for unit in req.controls])
            else:
                pipe = loaded.pipe
            pipe.scheduler = sampler_registry.make_scheduler(prepared.sampler, loaded.scheduler_config)
            images: list[Image.Image] = []
            try:
                for index in range(req.batch_size):
                    images.append(self._run_one(pipe, prepared, info, index, progress, cancel))
            except GenerationCancelled as cancelled:  # the finished images go with it
                raise GenerationCancelled(
                    str(cancelled), tuple(self._results(prepared, loaded, images)), req.batch_size
                ) from None
        return self._results(prepared, loaded, images)

    def _run_one(
        self,
        pipe: Any,
        prepared: _Prepared,
        info: ModelInfo,
        index: int,
        progress: ProgressCallback | None,
        cancel: threading.Event | None,
    ) -> Image.Image:
        """One image (batch of one, so each image depends only on its own seed: same recipe, same pixels)."""
        req = prepared.request
        if cancel is not None and cancel.is_set():
            raise GenerationCancelled("generation cancelled")
        kwargs = self._call_kwargs(prepared, info, index, progress, cancel)
        try:
            with guided(pipe, req.guidance or PLAIN, float(req.guidance_scale)):
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
            raise GenerationCancelled(f"generation cancelled (image {index + 1} of {req.batch_size})")
        return output.images[0]

    def _call_kwargs(
        self,
        prepared: _Prepared,
        info: ModelInfo,
        index: int,
        progress: ProgressCallback | None,
        cancel: threading.Event | None,
    ) -> dict[str, Any]:
        req = prepared.request
        steps = int(req.num_inference_steps or 0)
        total = steps * req.batch_size
        done = steps * index

        def on_step_end(
            pipeline: Any, step: int, timestep: Any, callback_kwargs: dict[str, Any]
        ) -> dict[str, Any]:
            if progress is not None:
                progress(done + min(step + 1, steps), total)
            if cancel is not None and cancel.is_set():
                pipeline._interrupt = True
            return callback_kwargs

        kwargs: dict[str, Any] = {
            "prompt": req.prompt,
            "guidance_scale": float(req.guidance_scale),
            "num_inference_steps": steps,
            "width": prepared.width,
            "height": prepared.height,
            "num_images_per_prompt": 1,
            "generator": torch.Generator("cpu").manual_seed(prepared.seed + index),
            "callback_on_step_end": on_step_end,
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

    def _results(
        self, prepared: _Prepared, loaded: LoadedModel, images: list[Image.Image]
    ) -> list[GeneratedImage]:
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
                prompt=req.prompt,
                prompt_typed=req.prompt_typed if req.prompt_typed is not None else req.prompt,
                negative_prompt=req.negative_prompt,
                sampler=prepared.sampler,
                steps=int(req.num_inference_steps),
                guidance_scale=float(req.guidance_scale),
                seed=seed,
                width=prepared.width,
                height=prepared.height,
                loras=loras,
                controls=controls,
                versions=versions,
                guidance=None if req.guidance is None else req.guidance.to_dict(),
            )
            results.append(GeneratedImage(image=image.convert("RGB"), seed=seed, recipe=recipe, index=index))
        return results


def request_from_recipe(
    recipe: Recipe,
    lora_paths: dict[str, str | Path] | None = None,
    control_images: dict[str, Image.Image | str | Path] | None = None,
) -> GenerationRequest:
    """A request that makes ``recipe``'s image again (batch of one, the recipe's own seed).

    ``lora_paths`` maps LoRA sha256 → file; ``control_images`` maps control image sha256 → image.  A LoRA or
    control image that is not supplied raises a ValidationError naming it.
    """
    lora_paths = lora_paths or {}
    control_images = control_images or {}
    loras = []
    for entry in recipe.loras:
        path = lora_paths.get(entry.sha256)
        if path is None:
            raise ValidationError("loras", f"LoRA {entry.name} ({entry.sha256[:12]}…) is no longer available")
        loras.append(LoraSpec(entry.name, path, entry.sha256, entry.weight, entry.version_id))
    controls = []
    for entry in recipe.controls:
        image = control_images.get(entry.control_image_sha256)
        if image is None:
            raise ValidationError(
                "controls", f"control image {entry.control_image_sha256[:12]}… is no longer available"
            )
        controls.append(
            ControlSpec(
                entry.controlnet,
                image,
                entry.scale,
                entry.start,
                entry.end,
                entry.template_id,
                entry.control_image_sha256,
            )
        )
    return GenerationRequest(
        prompt=recipe.prompt,
        negative_prompt=recipe.negative_prompt,
        guidance_scale=recipe.guidance_scale,
        num_inference_steps=recipe.steps,
        seed=recipe.seed,
        sampler=recipe.sampler,
        width=recipe.width,
        height=recipe.height,
        batch_size=1,
        loras=tuple(loras),
        controls=tuple(controls),
        prompt_typed=recipe.prompt_typed,
        model=recipe.base_model,
        model_revision=recipe.base_model_revision,
        guidance=None if recipe.guidance is None else Guidance.from_dict(recipe.guidance),
    )


def _check_guidance(guidance: Any, family: str) -> Guidance | None:
    """The request's guidance, None when it is plain CFG; FLUX (distilled guidance, no CFG pair) refuses
    any other."""
    if guidance is None:
        return None
    if not isinstance(guidance, Guidance):
        raise ValidationError("guidance", "must be a studio.engine.guidance.Guidance or a dict of its fields")
    if guidance.is_plain:
        return None
    if family == "flux":
        raise ValidationError(
            "guidance",
            f"{guidance.method} needs classifier-free guidance; FLUX models use distilled guidance "
            "(one pass per step, no unconditional prediction to combine)",
        )
    return guidance


def _adapter_spec(spec: LoraSpec, index: int) -> AdapterSpec:
    if not isinstance(spec.path, str | Path) or not str(spec.path):
        raise ValidationError(f"loras[{index}].path", "must name a .safetensors file")
    weight = _number(f"loras[{index}].weight", spec.weight)
    return AdapterSpec(name=str(spec.name), path=Path(spec.path), sha256=spec.sha256, weight=weight)


def _number(field_name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValidationError(field_name, "must be a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValidationError(field_name, f"must be a number, not {value!r}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ValidationError(field_name, "must be a finite number")
    return number


def _integer(field_name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise ValidationError(field_name, "must be a whole number")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise ValidationError(field_name, f"must be a whole number, not {value!r}")
