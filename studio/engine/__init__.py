"""Inference engine: the only place that imports diffusers for generation.

Framework-free API (no database, no UI): build an :class:`~studio.engine.generate.Engine`, pass it a
:class:`~studio.engine.request.GenerationRequest`, get
:class:`~studio.engine.generate.GeneratedImage` objects whose ``recipe`` makes the same pixels again.
Heavy imports (torch, diffusers) happen when the submodules are imported, not when this package is,
so ``import studio.engine`` stays cheap.

Modules (imports flow downwards; nothing here imports studio.db, services or ui):

* ``request``   — GenerationRequest, LoraSpec, ControlSpec, their limits, request_from_recipe (no torch)
* ``generate``  — Engine, GeneratedImage, GenerationCancelled
* ``edit_request`` — EditRequest (img2img, inpaint, expand, upscale), edit_request_from_recipe (no torch)
* ``edit``      — edit_images: edits on the resident pipeline
* ``edit_masks`` — masks, expand canvases, exact compositing, upscale tiles (no torch)
* ``model_info`` — ModelInfo, read_model_info (what a model accepts, from its configs)
* ``pipelines`` — PipelineCache: one base pipeline per (model, device, dtype), ControlNet, image-to-image
  and inpainting pipelines via ``from_pipe``, optional torch.compile
* ``adapters``  — AdapterManager (resident LoRAs, LRU, fit checks), HotswapAdapters (compile mode)
* ``control``   — load_image (safe uploads), make_control_map (controlnet-aux preprocessors), fit_to_size
* ``samplers``  — SAMPLERS, make_scheduler, available_samplers
* ``models``    — resolve_model, detect_family, pull_model, load_pipeline, load_controlnet
* ``recipe``    — Recipe, png_metadata, png_bytes, read_recipe (no torch)
* ``devices``   — choose_device
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from studio.engine.generate import Engine, GeneratedImage, GenerationCancelled
    from studio.engine.model_info import ModelInfo
    from studio.engine.recipe import Recipe, png_bytes, png_metadata, read_recipe
    from studio.engine.request import ControlSpec, GenerationRequest, LoraSpec

__all__ = [
    "ControlSpec",
    "Engine",
    "GeneratedImage",
    "GenerationCancelled",
    "GenerationRequest",
    "LoraSpec",
    "ModelInfo",
    "Recipe",
    "png_bytes",
    "png_metadata",
    "read_recipe",
]

_LAZY = {
    "ControlSpec": "studio.engine.request",
    "Engine": "studio.engine.generate",
    "GeneratedImage": "studio.engine.generate",
    "GenerationCancelled": "studio.engine.generate",
    "GenerationRequest": "studio.engine.request",
    "LoraSpec": "studio.engine.request",
    "ModelInfo": "studio.engine.model_info",
    "Recipe": "studio.engine.recipe",
    "png_bytes": "studio.engine.recipe",
    "png_metadata": "studio.engine.recipe",
    "read_recipe": "studio.engine.recipe",
}


def __getattr__(name: str) -> Any:
    """Import the public names lazily (keeps ``import studio.engine`` free of torch)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'studio.engine' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
