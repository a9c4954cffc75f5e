"""Named API endpoints for clients (``gradio_client``), by keyword, with the CLI's rule for what is left out.

* ``/generate_api``: ``brand``, ``prompt`` and any of ``negative_prompt``, ``cfg``, ``steps``, ``seed``,
  ``sampler``, ``size`` (a preset name, or ``WIDTHxHEIGHT`` where allowed), ``width``/``height``, ``loras``
  (``{"name": weight}``; 0 turns one off; LoRAs not named take their default weight), ``templates`` (names),
  ``batch_size``, ``guidance``. Anything left out (or None) is the brand's default, as in ``studio generate``.
* ``/brands_api``: the caller's brands with their defaults, LoRAs, templates, size presets and samplers
  (for those who do not generate: slug and name).
* ``/remix_api``: an image's recipe as ``/generate_api``'s arguments (``client.predict(**recipe, …)``).
* ``/regenerate_api``: an image made again from its stored recipe (same pixels).

Each answers JSON: the generation, its images (id, seed, pixel hash, a download link on this site). Errors are
the services' messages, naming the field. The Generate tab's form builds its request with the same
:func:`request_from_fields`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import gradio as gr

from studio.errors import PermissionDeniedError, ValidationError
from studio.services.brand_models import model_name
from studio.services.gallery import remix_json
from studio.services.generation import GenerateInput, GenerationResult
from studio.ui.common import actor_of, shown_to_user
from studio.ui.file_access import image_link

_TEXT_FIELDS = ("brand", "prompt", "negative_prompt", "sampler", "size")


def request_from_fields(values: Mapping[str, Any]) -> GenerateInput:
    """A request from named fields (None = the brand's default); a value of the wrong kind is a
    ValidationError naming its field. Numbers are checked by the service (ranges, whole numbers)."""
    known = {f.name for f in fields(GenerateInput)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValidationError(unknown[0], f"unknown field; known: {', '.join(sorted(known))}")
    given = {k: v for k, v in values.items() if v is not None}
    for name in _TEXT_FIELDS:
        if name in given and not isinstance(given[name], str):
            raise ValidationError(name, f"must be text, not {type(given[name]).__name__}")
    loras = given.get("loras", {})
    if not isinstance(loras, Mapping) or not all(isinstance(k, str) for k in loras):
        raise ValidationError("loras", 'give LoRAs as {"name": weight} (0 turns one off)')
    templates = given.get("templates", ())
    if isinstance(templates, str) or not all(isinstance(t, str) for t in templates):
        raise ValidationError("templates", 'give template names as a list: ["frame"]')
    given["loras"], given["templates"] = dict(loras), tuple(templates)
    given.setdefault("brand", "")
    given.setdefault("prompt", "")
    return GenerateInput(**given)


def result_json(result: GenerationResult, request: gr.Request | None) -> dict[str, Any]:
    """A generation as JSON for API clients: ids, prompts as sent, and each image's download link."""
    return {
        "generation_id": result.generation_id,
        "brand": result.brand_slug,
        "prompt": result.prompt,
        "negative_prompt": result.negative_prompt,
        "cfg": result.cfg,
        "seed": result.seed,
        "cancelled": result.cancelled,
        "images": [
            {
                "id": image.id,
                "seed": image.seed,
                "pixel_sha256": image.pixel_sha256,
                "palette_score": image.palette_score,
                "url": image_link(request, image.id),
            }
            for image in result.images
        ],
    }


def register(services: Any) -> None:
    """Add the endpoints to the Blocks being built (call inside its context)."""
    generation, gallery = services.generation, services.gallery

    def generate_api(  # noqa: PLR0913 - one keyword per field of the request
        brand: str,
        prompt: str,
        negative_prompt: str | None = None,
        cfg: float | None = None,
        steps: int | None = None,
        seed: int | None = None,
        sampler: str | None = None,
        size: str | None = None,
        width: int | None = None,
        height: int | None = None,
        loras: dict[str, float] | None = None,
        templates: list[str] | None = None,
        batch_size: int | None = None,
        guidance: dict[str, Any] | None = None,
        request: gr.Request = None,  # type: ignore[assignment]
    ) -> dict[str, Any]:
        """Generate for a brand; anything left out is the brand's default. LoRAs by name: {"name": weight}."""
        given = {
            "brand": brand, "prompt": prompt, "negative_prompt": negative_prompt, "cfg": cfg, "steps": steps,
            "seed": seed, "sampler": sampler, "size": size, "width": width, "height": height, "loras": loras,
            "templates": templates, "batch_size": batch_size, "guidance": guidance,
        }  # fmt: skip
        with shown_to_user():
            ask = request_from_fields(given)
            return result_json(generation.generate(actor_of(request), ask), request)

    def brands_api(request: gr.Request = None) -> list[dict[str, Any]]:  # type: ignore[assignment]
        """The caller's brands: defaults, LoRAs (name, default weight, trigger words), templates, sizes."""
        actor = actor_of(request)
        with shown_to_user():
            found = []
            for brand in services.brands.list_brands(actor):
                try:
                    options = generation.options(actor, brand.slug)
                except PermissionDeniedError:  # reviewers: the brand, not what generating offers
                    found.append({"slug": brand.slug, "name": brand.name})
                    continue
                off = dict(options.lora_issues)
                found.append(
                    {
                        "slug": options.brand_slug,
                        "name": options.brand_name,
                        "model": model_name(options.base_model),
                        "defaults": {
                            "cfg": options.default_cfg,
                            "steps": options.default_steps,
                            "sampler": options.default_sampler,
                            "size": options.default_size,
                        },
                        "samplers": list(options.samplers),
                        "sizes": [{"name": n, "width": w, "height": h} for n, w, h in options.sizes],
                        "allow_custom_sizes": options.allow_custom_sizes,
                        "loras": [
                            {"name": n, "default_weight": w, "trigger_words": list(t), "unusable": off.get(n)}
                            for n, w, t in options.loras
                        ],
                        "templates": [name for name, _ in options.templates],
                    }
                )
            return found

    def remix_api(image_id: int, request: gr.Request = None) -> dict[str, Any]:  # type: ignore[assignment]
        """An image's recipe as /generate_api's keyword arguments (its brand's other LoRAs at 0)."""
        import json

        with shown_to_user():
            return dict(json.loads(remix_json(gallery.remix(actor_of(request), image_id))))

    def regenerate_api(image_id: int, request: gr.Request = None) -> dict[str, Any]:  # type: ignore[assignment]
        """An image made again from its stored recipe (same pixels on the same machine)."""
        with shown_to_user():
            return result_json(generation.regenerate(actor_of(request), image_id), request)

    gr.api(generate_api, api_name="generate_api", concurrency_id="gpu")
    gr.api(brands_api, api_name="brands_api", queue=False)
    gr.api(remix_api, api_name="remix_api", queue=False)
    gr.api(regenerate_api, api_name="regenerate_api", concurrency_id="gpu")
