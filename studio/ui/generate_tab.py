"""The Generate tab (marketers, admins): pick a brand, type a prompt, get on-brand images.

Each handler makes one service call; the service checks the role and the brand membership. The Generate
button is also the named API endpoint ``generate`` (``gradio_client``: ``client.predict(..., api_name=
"/generate")`` with a login).
"""

from __future__ import annotations

import random
import threading
from typing import Any

import gradio as gr

from studio.services.container import Services
from studio.services.generation import (
    DEFAULT_SWEEP_SCALES,
    GenerateInput,
    GenerationOptions,
    GenerationResult,
)
from studio.ui.common import actor_of, shown_to_user

MAX_LORA_SLIDERS = 4  # the handlers below take exactly this many weights
CFG_HINT = (
    "How closely images follow the prompt. Low (2-4): looser, more varied, softer; high (10+): literal but "
    "harsher colours and artefacts. 5-8 is a good start."
)
_cancel_events: dict[str, threading.Event] = {}
_cancel_lock = threading.Lock()


def _cancel_event(request: gr.Request) -> threading.Event:
    """A fresh cancel flag for this browser session (the Cancel button sets it)."""
    event = threading.Event()
    with _cancel_lock:
        _cancel_events[str(getattr(request, "session_hash", "") or "")] = event
    return event


def _gallery(results: list[GenerationResult], *, by_cfg: bool = False) -> list[tuple[str, str]]:
    items = []
    for result in results:
        for image in result.images:
            caption = f"CFG {result.cfg:g}" if by_cfg else f"#{image.id} seed {image.seed}"
            if image.palette_flag:
                caption += " · off-palette"
            items.append((str(image.path), caption))
    return items


def _details(results: list[GenerationResult]) -> dict[str, Any]:
    return {
        "generations": [
            {
                "generation_id": r.generation_id,
                "cfg": r.cfg,
                "seed": r.seed,
                "images": [
                    {
                        "id": i.id,
                        "seed": i.seed,
                        "palette_score": i.palette_score,
                        "off_palette": i.palette_flag,
                    }
                    for i in r.images
                ],
            }
            for r in results
        ]
    }


def _seed(value: str | float | None) -> int | None:
    """Blank means random; anything else must be a whole number (the engine checks the range)."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise gr.Error(f"seed: {text!r} is not a whole number", print_exception=False) from None
    if not number.is_integer():
        raise gr.Error(f"seed: {text!r} is not a whole number", print_exception=False)
    return int(number)


def _final_prompt(result: GenerationResult) -> str:
    return (
        f"**Prompt sent:** {result.prompt}\n\n**Negative prompt sent:** {result.negative_prompt or '(none)'}"
    )


def render(services: Services) -> dict[str, Any]:
    """Build the tab; the app shell shows it to marketers and admins."""
    generation = services.generation

    gr.Markdown(
        "Pick a brand and describe the image: the brand's style, trigger words and negatives are added."
    )
    with gr.Row():
        with gr.Column(scale=2):
            brand = gr.Dropdown(
                label="Brand", choices=[], allow_custom_value=True, info="Only the brands you belong to."
            )
            prompt = gr.Textbox(label="Prompt", lines=2, placeholder="a red circle on a black background")
            negative = gr.Textbox(
                label="Negative prompt", lines=1, info="Merged with the brand's negative prompt."
            )
            with gr.Row():
                cfg = gr.Slider(1, 20, value=7, step=0.5, label="CFG scale", info=CFG_HINT)
                steps = gr.Slider(1, 150, value=20, step=1, label="Steps")
            with gr.Row():
                sampler = gr.Dropdown(label="Sampler", choices=[], value=None, allow_custom_value=True)
                size = gr.Dropdown(
                    label="Size",
                    choices=[],
                    value=None,
                    allow_custom_value=True,
                    info="The brand's channel sizes.",
                )
                batch = gr.Slider(1, 8, value=1, step=1, label="Images")
            with gr.Row():
                seed = gr.Textbox(
                    label="Seed", value="", placeholder="random", info="Blank = random (always recorded)."
                )
                dice = gr.Button("🎲 Random seed", scale=0, min_width=80)
            lora_names = gr.State([])
            sliders = [
                gr.Slider(0, 1.5, value=1.0, step=0.05, label=f"LoRA {i + 1}", visible=False)
                for i in range(MAX_LORA_SLIDERS)
            ]
            templates = gr.Dropdown(
                label="Layout templates", choices=[], multiselect=True, allow_custom_value=True
            )
            thumbs = gr.Gallery(
                label="Templates",
                columns=4,
                height=160,
                object_fit="contain",
                format="png",
                interactive=False,
            )
            with gr.Row():
                generate_btn = gr.Button("Generate", variant="primary")
                sweep_btn = gr.Button("CFG sweep")
                cancel_btn = gr.Button("Cancel", variant="stop")
        with gr.Column(scale=3):
            gallery = gr.Gallery(label="Results", columns=3, format="png", interactive=False)
            final_prompt = gr.Markdown()
            details = gr.JSON(label="Details")

    def list_brands(request: gr.Request) -> Any:
        with shown_to_user():
            choices = [(b.name, b.slug) for b in services.brands.list_brands(actor_of(request))]
        return gr.update(choices=choices, value=choices[0][1] if choices else None)

    def brand_changed(slug: str | None, request: gr.Request) -> list[Any]:
        if not slug:
            hidden = [gr.update(visible=False)] * MAX_LORA_SLIDERS
            return [
                gr.update(),
                gr.update(),
                gr.update(),
                gr.update(),
                [],
                gr.update(choices=[]),
                [],
                *hidden,
            ]
        with shown_to_user():
            options: GenerationOptions = generation.options(actor_of(request), slug)
        loras = options.loras[:MAX_LORA_SLIDERS]
        lora_updates = [
            gr.update(
                visible=True, value=weight, label=f"LoRA {name}" + (f" ({', '.join(words)})" if words else "")
            )
            if i < len(loras)
            else gr.update(visible=False)
            for i, (name, weight, words) in enumerate(list(loras) + [("", 0.0, ())] * MAX_LORA_SLIDERS)
        ][:MAX_LORA_SLIDERS]
        sizes = [name for name, _, _ in options.sizes]
        return [
            gr.update(value=min(max(options.default_cfg, 1), 20)),
            gr.update(value=options.default_steps),
            gr.update(choices=list(options.samplers), value=options.default_sampler),
            gr.update(choices=sizes, value=options.default_size if options.default_size in sizes else None),
            [name for name, _, _ in loras],
            gr.update(choices=[name for name, _ in options.templates], value=[]),
            [(image, name) for name, image in options.thumbnails if image is not None],
            *lora_updates,
        ]

    def _request(
        slug: str | None,
        text: str | None,
        neg: str | None,
        cfg_v: float | None,
        steps_v: float | None,
        sampler_v: str | None,
        size_v: str | None,
        batch_v: float | None,
        seed_v: str | float | None,
        names: list[str] | None,
        chosen: list[str] | None,
        weights: tuple[float, ...],
    ) -> GenerateInput:
        return GenerateInput(
            brand=slug or "",
            prompt=text or "",
            negative_prompt=neg or "",
            cfg=cfg_v,
            steps=None if steps_v is None else int(steps_v),
            seed=_seed(seed_v),
            sampler=sampler_v or None,
            size=size_v or None,
            loras=dict(zip(names or [], weights, strict=False)),
            templates=tuple(chosen or ()),
            batch_size=int(batch_v or 1),
        )

    # Gradio maps inputs to named parameters (the request and progress are injected by type).
    def generate(  # noqa: PLR0913
        slug: str | None,
        text: str | None,
        neg: str | None,
        cfg_v: float | None,
        steps_v: float | None,
        sampler_v: str | None,
        size_v: str | None,
        batch_v: float | None,
        seed_v: str | float | None,
        names: list[str] | None,
        chosen: list[str] | None,
        w1: float,
        w2: float,
        w3: float,
        w4: float,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> list[Any]:
        ask = _request(
            slug,
            text,
            neg,
            cfg_v,
            steps_v,
            sampler_v,
            size_v,
            batch_v,
            seed_v,
            names,
            chosen,
            (w1, w2, w3, w4),
        )
        cancel = _cancel_event(request)
        with shown_to_user():
            result = generation.generate(
                actor_of(request),
                ask,
                progress=lambda s, t: progress((s, t), desc="Denoising", unit="steps"),
                cancel=cancel,
            )
        return [_gallery([result]), _final_prompt(result), _details([result])]

    def sweep(  # noqa: PLR0913
        slug: str | None,
        text: str | None,
        neg: str | None,
        cfg_v: float | None,
        steps_v: float | None,
        sampler_v: str | None,
        size_v: str | None,
        batch_v: float | None,
        seed_v: str | float | None,
        names: list[str] | None,
        chosen: list[str] | None,
        w1: float,
        w2: float,
        w3: float,
        w4: float,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),  # noqa: B008
    ) -> list[Any]:
        ask = _request(
            slug,
            text,
            neg,
            cfg_v,
            steps_v,
            sampler_v,
            size_v,
            batch_v,
            seed_v,
            names,
            chosen,
            (w1, w2, w3, w4),
        )
        cancel = _cancel_event(request)
        with shown_to_user():
            results = generation.cfg_sweep(
                actor_of(request),
                ask,
                DEFAULT_SWEEP_SCALES,
                progress=lambda s, t: progress((s, t), desc="CFG sweep", unit="steps"),
                cancel=cancel,
            )
        return [_gallery(results, by_cfg=True), _final_prompt(results[0]), _details(results)]

    def cancel(request: gr.Request) -> None:
        with _cancel_lock:
            event = _cancel_events.get(str(getattr(request, "session_hash", "") or ""))
        if event is not None:
            event.set()
        gr.Info("Cancelling after the current step…")

    inputs = [
        brand,
        prompt,
        negative,
        cfg,
        steps,
        sampler,
        size,
        batch,
        seed,
        lora_names,
        templates,
        *sliders,
    ]
    outputs = [gallery, final_prompt, details]
    brand.change(
        brand_changed,
        brand,
        [cfg, steps, sampler, size, lora_names, templates, thumbs, *sliders],
        api_visibility="private",
    )
    dice.click(lambda: str(random.randrange(2**32)), None, seed, api_visibility="private", queue=False)
    running = generate_btn.click(generate, inputs, outputs, api_name="generate", concurrency_id="gpu")
    sweeping = sweep_btn.click(sweep, inputs, outputs, api_name="cfg_sweep", concurrency_id="gpu")
    cancel_btn.click(cancel, None, None, api_visibility="private", queue=False, cancels=[running, sweeping])
    return {"on_load": {"fn": list_brands, "inputs": None, "outputs": brand}}
