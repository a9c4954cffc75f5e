"""The Generate tab (marketers, admins): pick a brand, type a prompt, get on-brand images.

Each handler makes one service call; the service checks the role and the brand membership. The Generate
button is also the named API endpoint ``generate`` (``gradio_client``: ``client.predict(..., api_name=
"/generate")`` with a login).

The Gallery's Remix fills this form through :class:`RemixTarget` (``render()`` returns it as
``"remix_target"``); the brand's change event, which otherwise resets the form to the brand's defaults, then
applies the pending remix instead.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.services.container import Services
from studio.services.generation import (
    DEFAULT_SWEEP_SCALES,
    GenerateInput,
    GenerationOptions,
    GenerationResult,
    ProgressCallback,
)
from studio.services.views import Actor
from studio.ui.common import actor_of, shown_to_user

MAX_LORA_SLIDERS = 4  # the handlers below take exactly this many weights
CFG_HINT = (
    "How closely images follow the prompt. Low (2-4): looser, more varied, softer; high (10+): literal but "
    "harsher colours and artefacts. 5-8 is a good start."
)
_cancel_events: dict[str, threading.Event] = {}
_cancel_lock = threading.Lock()
#: what a Generate / CFG sweep button runs: (actor, request, progress, cancel) → the results
Runner = Callable[[Actor, GenerateInput, ProgressCallback, threading.Event], list[GenerationResult]]


@dataclass(frozen=True)
class RemixTarget:
    """The Generate form, for another tab to fill with a recipe (the Gallery's Remix).

    ``fill(actor, request)`` returns one value per component of ``outputs``: the brand, the prompts, seed,
    size, CFG, steps, sampler, LoRA weights and templates of ``request`` (a service refusal propagates,
    e.g. for reviewers, who do not generate). It also leaves ``request`` as the pending remix, which the
    brand's change event applies instead of the brand's defaults (until the user picks a brand), so the
    recipe wins over them.
    """

    outputs: tuple[Any, ...]
    fill: Callable[[Actor, GenerateInput], list[Any]]


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


def _size_name(options: GenerationOptions, width: int | None, height: int | None) -> str | None:
    """The brand's size preset of ``width``×``height``, else ``"WIDTHxHEIGHT"`` (None when no size)."""
    if width is None or height is None:
        return None
    for name, w, h in options.sizes:
        if (w, h) == (width, height):
            return name
    return f"{width}x{height}"


def _availability(options: GenerationOptions) -> str:
    """The brand's model, and the LoRAs and templates shown disabled because they do not fit it."""
    family = f" ({options.model_family})" if options.model_family else ""
    lines = [f"**Model:** `{options.base_model}`{family}"] if options.base_model else []
    lines += [f"- LoRA **{name}** is disabled: {why}" for name, why in options.lora_issues]
    lines += [f"- Template **{name}** is disabled: {why}" for name, why in options.template_issues]
    return "\n".join(lines)


def _final_prompt(result: GenerationResult) -> str:
    return (
        f"**Prompt sent:** {result.prompt}\n\n**Negative prompt sent:** {result.negative_prompt or '(none)'}"
    )


def form_updates(options: GenerationOptions, ask: GenerateInput | None) -> list[Any]:
    """cfg, steps, sampler, size, LoRA names, templates, thumbnails, the model note and the LoRA sliders:
    the brand's defaults, or ``ask``'s values where it has them (a remix). LoRAs and templates that do
    not fit the brand's model are disabled (weight 0) or left out of the choices, with the reason."""
    ask = ask or GenerateInput(brand=options.brand_slug, prompt="")
    off = dict(options.lora_issues)
    # the LoRAs that fit the brand's model first: the disabled ones never take a slider from a usable one
    loras = sorted(options.loras, key=lambda lora: lora[0] in off)[:MAX_LORA_SLIDERS]
    blocked = dict(options.template_issues)
    usable = [name for name, _ in options.templates if name not in blocked]
    lora_updates = [
        gr.update(
            visible=True,
            value=0.0 if name in off else float(ask.loras.get(name, weight)),
            label=f"LoRA {name}"
            + (f" ({', '.join(words)})" if words else "")
            + (" (disabled)" if name in off else ""),
            interactive=name not in off,
            info=f"Disabled: {off[name]}" if name in off else "",
        )
        if i < len(loras)
        else gr.update(visible=False)
        for i, (name, weight, words) in enumerate(list(loras) + [("", 0.0, ())] * MAX_LORA_SLIDERS)
    ][:MAX_LORA_SLIDERS]
    sizes = [name for name, _, _ in options.sizes]
    default_size = options.default_size if options.default_size in sizes else None
    size_value = ask.size or _size_name(options, ask.width, ask.height) or default_size
    if size_value and size_value not in sizes:
        sizes.append(size_value)
    cfg_value = options.default_cfg if ask.cfg is None else ask.cfg
    return [
        gr.update(value=min(max(cfg_value, 1), 20)),
        gr.update(value=options.default_steps if ask.steps is None else ask.steps),
        gr.update(choices=list(options.samplers), value=ask.sampler or options.default_sampler),
        gr.update(choices=sizes, value=size_value),
        [name for name, _, _ in loras],
        gr.update(choices=usable, value=[t for t in ask.templates if t in usable]),
        [(image, name) for name, image in options.thumbnails if image is not None and name in usable],
        _availability(options),
        *lora_updates,
    ]


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
            pending_remix = gr.State(None)  # a remix's GenerateInput, until the user picks a brand
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
            availability = gr.Markdown()
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

    def brand_changed(slug: str | None, pending: GenerateInput | None, request: gr.Request) -> list[Any]:
        """The brand's options and defaults; after a remix of this brand, the remix's values instead.

        The pending remix stays until the user picks a brand themselves (``brand.input`` clears it): the
        page may fire this event more than once after a remix (here: for the brand shown before, then for
        the remix's), and each must leave the remix's values in place."""
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
                "",
                *hidden,
            ]
        with shown_to_user():
            options: GenerationOptions = generation.options(actor_of(request), slug)
        remix = pending if pending is not None and pending.brand == slug else None
        return form_updates(options, remix)

    def fill(actor: Actor, ask: GenerateInput) -> list[Any]:
        options = generation.options(actor, ask.brand)
        return [
            gr.update(value=ask.brand),
            ask.prompt,
            ask.negative_prompt,
            "" if ask.seed is None else str(ask.seed),
            ask.batch_size,
            *form_updates(options, ask),
            ask,
        ]

    def form_handler(name: str, run: Runner, *, desc: str, by_cfg: bool) -> Callable[..., list[Any]]:
        """A button handler over the whole form (Gradio maps inputs to the named parameters and injects the
        request and progress by type); ``run`` makes the images."""

        def handler(  # noqa: PLR0913
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
            ask = GenerateInput(
                brand=slug or "",
                prompt=text or "",
                negative_prompt=neg or "",
                cfg=cfg_v,
                steps=None if steps_v is None else int(steps_v),
                seed=_seed(seed_v),
                sampler=sampler_v or None,
                size=size_v or None,
                loras=dict(zip(names or [], (w1, w2, w3, w4), strict=False)),
                templates=tuple(chosen or ()),
                batch_size=int(batch_v or 1),
            )
            cancel = _cancel_event(request)
            with shown_to_user():
                results = run(
                    actor_of(request),
                    ask,
                    lambda s, t: progress((s, t), desc=desc, unit="steps"),
                    cancel,
                )
            return [_gallery(results, by_cfg=by_cfg), _final_prompt(results[0]), _details(results)]

        handler.__name__ = handler.__qualname__ = name
        return handler

    generate = form_handler(
        "generate",
        lambda actor, ask, step, cancel: [generation.generate(actor, ask, progress=step, cancel=cancel)],
        desc="Denoising",
        by_cfg=False,
    )
    sweep = form_handler(
        "sweep",
        lambda actor, ask, step, cancel: generation.cfg_sweep(
            actor, ask, DEFAULT_SWEEP_SCALES, progress=step, cancel=cancel
        ),
        desc="CFG sweep",
        by_cfg=True,
    )

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
    form = [cfg, steps, sampler, size, lora_names, templates, thumbs, availability, *sliders]
    brand.change(brand_changed, [brand, pending_remix], form, api_visibility="private")
    brand.input(lambda: None, None, pending_remix, api_visibility="private", queue=False)
    dice.click(lambda: str(random.randrange(2**32)), None, seed, api_visibility="private", queue=False)
    running = generate_btn.click(generate, inputs, outputs, api_name="generate", concurrency_id="gpu")
    sweeping = sweep_btn.click(sweep, inputs, outputs, api_name="cfg_sweep", concurrency_id="gpu")
    cancel_btn.click(cancel, None, None, api_visibility="private", queue=False, cancels=[running, sweeping])
    remix_target = RemixTarget(
        outputs=(brand, prompt, negative, seed, batch, *form, pending_remix), fill=fill
    )
    return {"on_load": {"fn": list_brands, "inputs": None, "outputs": brand}, "remix_target": remix_target}
