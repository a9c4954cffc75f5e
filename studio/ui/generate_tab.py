"""The Generate tab (marketers, admins): pick a brand, type a prompt, get on-brand images.

``render()`` builds the components and ``listen()`` wires them; each handler makes one service call, and the
service checks the role and the brand membership. The Generate button is also the endpoint ``generate``, with
the form's inputs by position; API clients use ``/generate_api`` (keyword arguments, LoRAs by name; see
:mod:`studio.ui.generate_api`), and "Settings from a PNG" (:mod:`studio.ui.png_drop`) fills the form.

Bad input never replaces a component: a validator runs :meth:`GenerationService.check` before the run and
shows each problem under its field (an API client gets the same messages as an error), and a failure
during the run is a warning toast. The Generate / Cancel bar sticks to the top of the page; while a run
goes, a timer polls its progress line (``step 12/40 · image 2/4 · ETA 8 s``). Cancel keeps the finished
images. Ctrl+Enter generates.

The Gallery's Remix fills this form through :class:`RemixTarget` (``render()`` returns it as
``"remix_target"``); the brand's change event, which otherwise resets the form to the brand's defaults, then
applies the pending remix instead.
"""

from __future__ import annotations

import html
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.errors import CancelledError, PermissionDeniedError, StudioError, is_database_error
from studio.services.container import Services
from studio.services.generation import (
    DEFAULT_SWEEP_SCALES,
    GenerateInput,
    GenerationOptions,
    GenerationResult,
    ProgressCallback,
)
from studio.services.views import Actor
from studio.ui import edit_panel, generate_api, png_drop
from studio.ui import generate_form as form_
from studio.ui.common import actor_of, markdown_message, shown_to_user, toast_error
from studio.ui.generate_form import (  # noqa: F401
    CFG_HINT,
    FORM_FIELDS,
    GUIDANCE_HINT,
    GUIDANCE_PRESETS,
    MAX_LORA_SLIDERS,
    form_updates,
)
from studio.ui.generate_queue import UserQueue, client_gone

#: what a Generate / CFG sweep button runs: (actor, request, progress, cancel) → the results
Runner = Callable[[Actor, GenerateInput, ProgressCallback, Any], list[GenerationResult]]
_runs = form_.Runs()

STYLE = """<style>
#gen-style { display: none; }
#edit-anchor { height: 0; min-height: 0; padding: 0; margin-bottom: calc(-1 * var(--layout-gap)); }
#gen-actions { position: sticky; top: 0; z-index: 30; background: var(--background-fill-primary);
  padding: 6px 0 2px; }
#gen-progress { min-height: 1.5em; font-variant-numeric: tabular-nums; }
#gen-progress p { margin: 0; }
#gen-tokens { font-size: var(--text-sm); }
#gen-tokens p { margin: 2px 0; }
#gen-results img, #gen-templates img { object-fit: contain !important; image-rendering: pixelated; }
#gen-results .thumbnail-item, #gen-templates .thumbnail-item { background: var(--background-fill-secondary); }
#gen-results .grid-container { padding-top: 2.4rem; }
#gen-results .thumbnail-item { display: flex; flex-direction: column; aspect-ratio: auto; height: auto; }
#gen-results .thumbnail-item img { width: 100%; aspect-ratio: 1; height: auto; }
#gen-results .caption-label { position: static; transform: none; max-width: 100%; margin: 4px auto; }
#gen-results .grid-wrap { max-height: none !important; height: auto !important;
  overflow: visible !important; }
</style>"""
#: Ctrl+Enter (Cmd+Enter) anywhere on the page clicks Generate while the Generate tab is shown
KEYS_JS = """
if (!window.__studioGenerateKeys) {
  window.__studioGenerateKeys = true;
  document.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter' || !(event.ctrlKey || event.metaKey)) return;
    const button = document.querySelector('#gen-generate');
    if (button && button.offsetParent !== null && !button.disabled) {
      event.preventDefault();
      button.click();
    }
  });
}
"""


@dataclass(frozen=True)
class RemixTarget:
    """The Generate form, for another tab to fill with a recipe (the Gallery's Remix).

    ``fill(actor, ask, request)`` returns one value per component of ``outputs``: the brand, the prompts,
    seed, size, CFG, steps, sampler, LoRA weights and templates of ``ask`` (a service refusal propagates,
    e.g. for reviewers, who do not generate); ``request`` is the Gradio request of the event that fills
    the form (the template tiles are links on its address). It also leaves ``ask`` as the pending remix,
    which the brand's change event applies instead of the brand's defaults (until the user picks a brand),
    so the recipe wins over them.
    """

    outputs: tuple[Any, ...]
    fill: Callable[[Actor, GenerateInput, gr.Request], list[Any]]


def _session(request: gr.Request | None) -> str:
    return str(getattr(request, "session_hash", "") or "")


def _from_api(request: gr.Request | None) -> bool:
    """A ``gradio_client`` call (it says so in a header): it gets errors as errors, not as toasts."""
    headers = getattr(request, "headers", None) or {}
    return str(headers.get("x-gradio-user", "")).lower() == "api"


def _over_form(body: Callable[[dict[str, Any], gr.Request], Any], name: str) -> Callable[..., Any]:
    """``body(values, request)`` as a Gradio handler over the form's inputs (one parameter per field of
    ``FORM_FIELDS``, by name; Gradio injects the request by its type)."""

    def handler(  # noqa: PLR0913
        brand: str | None,
        prompt: str | None,
        negative_prompt: str | None = None,
        cfg: float | None = None,
        steps: float | None = None,
        sampler: str | None = None,
        size: str | None = None,
        batch_size: float | None = None,
        seed: str | float | None = None,
        lora_names: list[str] | None = None,
        templates: list[str] | None = None,
        lora_0: float | None = None,
        lora_1: float | None = None,
        lora_2: float | None = None,
        lora_3: float | None = None,
        guidance: str | None = None,
        request: gr.Request | None = None,
    ) -> Any:
        given = locals()
        return body({field: given[field] for field in FORM_FIELDS}, request)

    handler.__name__ = handler.__qualname__ = name
    return handler


def render(services: Services) -> dict[str, Any]:
    """Build the tab; the app shell shows it to marketers and admins (and to reviewers who may edit: edit
    mode only)."""
    gr.HTML(STYLE, js_on_load=KEYS_JS, elem_id="gen-style")
    edit_mode = edit_panel.render(services)  # issue 19: hidden until the Gallery's Edit opens an image
    # a reviewer who may edit (STUDIO_REVIEWERS_MAY_EDIT) sees the tab for its edit mode, with this note
    # instead of the text-to-image form (the services refuse them text-to-image anyway)
    edit_only = gr.Markdown(EDIT_ONLY_NOTE, visible=False, elem_id="gen-edit-only")
    with gr.Row(equal_height=False) as text_to_image:
        with gr.Column(scale=2, elem_id="gen-form"):
            brand = gr.Dropdown(
                label="Brand", choices=[], allow_custom_value=True, info="Only the brands you belong to."
            )
            prompt = gr.Textbox(
                label="Prompt",
                lines=2,
                placeholder="a red circle on a black background  (Ctrl+Enter generates)",
                elem_id="gen-prompt",
            )
            tokens = gr.Markdown(elem_id="gen-tokens")
            negative = gr.Textbox(
                label="Negative prompt", lines=1, info="Merged with the brand's negative prompt."
            )
            # no value of their own: the brand's defaults fill them (an API client that leaves them out
            # gets the brand's, as with /generate_api and the CLI)
            cfg = gr.Number(label="CFG scale", value=None, step=0.5, info=CFG_HINT, elem_id="gen-cfg")
            guidance = gr.Dropdown(
                label="Guidance",
                choices=list(GUIDANCE_PRESETS),
                value="Brand default",
                info=GUIDANCE_HINT,
                elem_id="gen-guidance",
            )
            with gr.Row(equal_height=True):
                steps = gr.Number(label="Steps", value=None, precision=None, step=1, info="1-150.")
                batch = gr.Number(label="Images", value=1, step=1, info="1-8 per run.")
            with gr.Row(equal_height=True):
                sampler = gr.Dropdown(
                    label="Sampler",
                    choices=[],
                    value=None,
                    allow_custom_value=True,
                    info="The brand's model's schedulers.",
                )
                size = gr.Dropdown(
                    label="Size",
                    choices=[],
                    value=None,
                    allow_custom_value=True,
                    info="The brand's channel sizes.",
                )
            with gr.Row(equal_height=True):
                seed = gr.Textbox(
                    label="Seed",
                    value="",
                    placeholder="random",
                    info="Blank = random (always recorded).",
                    elem_id="gen-seed",
                )
                with gr.Column(min_width=120, scale=0):
                    dice = gr.Button("Random seed", size="sm", elem_id="gen-random-seed")
                    reuse = gr.Button("Reuse seed", size="sm", elem_id="gen-reuse-seed")
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
                show_label=False,  # the badge would cover the small tiles; the dropdown above names them
                columns=4,
                fit_columns=False,  # one template: a small tile, not one stretched across the form
                height=150,
                object_fit="contain",
                format="png",
                interactive=False,
                allow_preview=False,
                buttons=[],
                elem_id="gen-templates",
            )
            availability = gr.Markdown()
            png_file, png_note = png_drop.render()
        with gr.Column(scale=3):
            with gr.Row(elem_id="gen-actions"):  # above the fold, and sticky when the page scrolls
                generate_btn = gr.Button("Generate", variant="primary", elem_id="gen-generate", min_width=90)
                sweep_btn = gr.Button("CFG sweep", elem_id="gen-sweep", min_width=90)
                cancel_btn = gr.Button("Cancel", variant="stop", elem_id="gen-cancel", min_width=90)
            progress = gr.Markdown(elem_id="gen-progress")
            gallery = gr.Gallery(
                label="Results",
                columns=3,
                fit_columns=False,  # tiles of one size; click one for the large view
                height="auto",  # grows with the results: no scroll box that cuts a row in half
                object_fit="contain",
                format="png",
                interactive=False,
                buttons=["download", "fullscreen"],  # no Share: the studio is not on the internet
                elem_id="gen-results",
            )
            final_prompt = gr.Markdown(elem_id="gen-final-prompt")
            details = gr.JSON(label="Details")
        timer = gr.Timer(0.5, active=False)

    parts = {
        "brand": brand,
        "prompt": prompt,
        "negative_prompt": negative,
        "cfg": cfg,
        "steps": steps,
        "sampler": sampler,
        "size": size,
        "batch_size": batch,
        "seed": seed,
        "lora_names": lora_names,
        "templates": templates,
        **{f"lora_{i}": slider for i, slider in enumerate(sliders)},
        "guidance": guidance,
    }
    widgets = {
        "tokens": tokens,
        "generate": generate_btn,
        "sweep": sweep_btn,
        "cancel": cancel_btn,
        "progress": progress,
        "dice": dice,
        "reuse": reuse,
        "pending_remix": pending_remix,
        "thumbs": thumbs,
        "availability": availability,
        "gallery": gallery,
        "final_prompt": final_prompt,
        "details": details,
        "timer": timer,
        "png_file": png_file,
        "png_note": png_note,
    }
    shown_by_role = [(text_to_image, may_generate), (edit_only, lambda roles: not may_generate(roles))]
    return {**listen(services, parts, widgets), **edit_mode, "shown_by_role": shown_by_role}


#: who may make images from text (the generation services' rule)
GENERATORS = frozenset({"marketer", "admin"})
EDIT_ONLY_NOTE = (
    "_Making images from text needs the marketer role. To edit an image, open it in the **Gallery** and "
    "press **Edit** (or **Fix region**): it opens here._"
)


def may_generate(roles: set[str] | frozenset[str]) -> bool:
    """Whether one with ``roles`` sees the text-to-image form."""
    return bool(GENERATORS & set(roles))


def listen(services: Services, parts: dict[str, Any], w: dict[str, Any]) -> dict[str, Any]:  # noqa: PLR0915
    """Wire the tab's events; returns what the app shell needs (``on_load``, ``remix_target``)."""
    generation = services.generation
    queue = UserQueue(services.settings.max_queued_per_user)  # each user's share of the GPU queue
    inputs = [parts[name] for name in FORM_FIELDS]
    sliders = [parts[f"lora_{i}"] for i in range(MAX_LORA_SLIDERS)]
    outputs = [w["gallery"], w["final_prompt"], w["details"]]
    form = [
        parts["cfg"],
        parts["steps"],
        parts["sampler"],
        parts["size"],
        parts["lora_names"],
        parts["templates"],
        w["thumbs"],
        w["availability"],
        *sliders,
        parts["guidance"],
    ]

    def list_brands(request: gr.Request) -> Any:
        with shown_to_user():
            choices = [(b.name, b.slug) for b in services.brands.list_brands(actor_of(request))]
        return gr.update(choices=choices, value=choices[0][1] if choices else None)

    def brand_changed(slug: str | None, pending: GenerateInput | None, request: gr.Request) -> list[Any]:
        """The brand's options and defaults (after a remix of this brand, the remix's values instead); the
        previous brand's results are cleared.

        The pending remix stays until the user picks a brand themselves (``brand.input`` clears it): the
        page may fire this event more than once after a remix (here: for the brand shown before, then for
        the remix's), and each must leave the remix's values in place."""
        cleared = [[], "", None, ""]  # results, prompt sent, details, the last run's line
        if not slug:
            hidden = [gr.update(visible=False)] * MAX_LORA_SLIDERS
            return [*[gr.update()] * 4, [], gr.update(choices=[]), [], "", *hidden, gr.update(), *cleared]
        with shown_to_user():
            options: GenerationOptions = generation.options(actor_of(request), slug)
        remix = pending if pending is not None and pending.brand == slug else None
        return [*form_updates(options, remix, request), *cleared]

    def fill(actor: Actor, ask: GenerateInput, request: gr.Request) -> list[Any]:
        options = generation.options(actor, ask.brand)
        return [
            gr.update(value=ask.brand),
            ask.prompt,
            ask.negative_prompt,
            "" if ask.seed is None else str(ask.seed),
            ask.batch_size,
            *form_updates(options, ask, request),
            ask,
        ]

    def count_tokens(  # noqa: PLR0913
        slug: str | None,
        text: str | None,
        names: list[str] | None,
        w1: float,
        w2: float,
        w3: float,
        w4: float,
        request: gr.Request,
    ) -> str:
        """The token line under the prompt: ``n / max`` for the brand's model, what is cut, unknown words."""
        if not slug:
            return ""
        loras = dict(zip(names or [], (w1, w2, w3, w4), strict=False))
        with shown_to_user():
            check = generation.check_prompt(actor_of(request), slug, text or "", loras)
        return form_.token_line(check)

    def check_form(named: dict[str, Any], request: gr.Request) -> list[Any]:
        """The validator: each problem of the form as a message under its field (nothing runs then)."""
        try:
            problems = list(generation.check(actor_of(request), form_.read_form(named)))
        except StudioError as problem:  # a seed that is not a number
            problems = [problem]
        if not problems:  # a request that would run: within the user's share of the queue?
            full = queue.admit(request)
            if full is not None:
                problems = [StudioError(f"Not queued: {full}.")]
        messages = form_.field_messages(problems, list(named.get("lora_names") or []))
        if messages:  # nothing runs: the progress line says why (it stays; the marks under fields may not)
            why = " · ".join(markdown_message(p) for p in problems)
            _runs.refuse(_session(request), f"Not generated: {why}")
        return [gr.validate(name not in messages, messages.get(name, "")) for name in FORM_FIELDS]

    def form_handler(name: str, run: Runner, *, images: Callable[[GenerateInput], int], by_cfg: bool) -> Any:
        """A button handler over the whole form (inputs in ``FORM_FIELDS`` order, then the request)."""

        def handler(values: dict[str, Any], request: gr.Request) -> list[Any]:
            session = _session(request)
            queue.started(request)
            if client_gone(request):  # nobody reads the result: never run it
                return [gr.skip()] * 3
            try:
                ask = form_.read_form(values)
                current = _runs.start(session, images(ask))

                def step(done: int, total: int) -> None:
                    current.progress(done, total)
                    if not current.cancel.is_set() and client_gone(request, wait_s=0):
                        current.cancel.set()  # the client went away: stop at this step

                results = run(actor_of(request), ask, step, current.cancel)
            except StudioError as error:
                return _failed(error, request, session)
            except Exception as error:
                if is_database_error(error):  # its text holds SQL: a generic message, the error in the log
                    raise toast_error(error) from None
                raise
            seconds = time.monotonic() - current.started
            current.line = form_.summary(results, images(ask), seconds)
            if any(r.cancelled for r in results):
                gr.Info(current.line)
            shown = form_.gallery_items(results, request, by_cfg=by_cfg)
            return [shown, form_.final_prompt(results[0]), form_.details(results)]

        return _over_form(handler, name)

    def _failed(error: StudioError, request: gr.Request, session: str) -> list[Any]:
        """A refusal or failure during the run: an error for API clients (and refusals); for the page a
        toast and the progress line, the results as they were."""
        run = _runs.get(session)
        if _from_api(request) or isinstance(error, PermissionDeniedError):
            raise toast_error(error) from error
        if isinstance(error, CancelledError):
            message = "Cancelled before the first image was finished: nothing was kept."
            gr.Info(message)
        else:
            message = f"Not generated: {markdown_message(error)}"
            gr.Warning(html.escape(str(error), quote=False))
        if run is not None:
            run.line = message
        return [gr.skip()] * 3

    generate = form_handler(
        "generate",
        lambda actor, ask, step, cancel: [generation.generate(actor, ask, progress=step, cancel=cancel)],
        images=lambda ask: int(ask.batch_size or 1),
        by_cfg=False,
    )
    sweep = form_handler(
        "sweep",
        lambda actor, ask, step, cancel: generation.cfg_sweep(
            actor, ask, DEFAULT_SWEEP_SCALES, progress=step, cancel=cancel
        ),
        images=lambda ask: len(DEFAULT_SWEEP_SCALES),
        by_cfg=True,
    )

    def cancel(request: gr.Request) -> None:
        run = _runs.get(_session(request))
        if run is None:
            gr.Info("Nothing is running.")
            return
        run.cancel.set()
        gr.Info("Cancelling after the current step; finished images are kept.")

    def run_progress(request: gr.Request) -> list[Any]:
        """The poll of the progress line while a run goes (it stops itself when no run is coming)."""
        session = _session(request)
        run = _runs.get(session)
        if run is not None:
            return [run.line, gr.skip()]
        why = _runs.refused(session)
        if why is not None:
            return [why, gr.Timer(active=False)]
        return [gr.skip(), gr.skip() if _runs.waiting(session) else gr.Timer(active=False)]

    def run_expected(request: gr.Request) -> Any:
        """A click: poll the progress line until the run ends."""
        _runs.expect(_session(request))
        return gr.Timer(active=True)

    def run_finished(request: gr.Request) -> list[Any]:
        """Stop polling; leave the run's last line (done, cancelled, or why not)."""
        run = _runs.finish(_session(request))
        return [gr.Timer(active=False), run.line if run is not None else ""]

    brand, prompt, timer, progress = parts["brand"], parts["prompt"], w["timer"], w["progress"]
    token_inputs = [brand, prompt, parts["lora_names"], *sliders]
    brand.change(
        brand_changed, [brand, w["pending_remix"]], [*form, *outputs, progress], api_visibility="private"
    ).then(count_tokens, token_inputs, w["tokens"], api_visibility="private", show_progress="hidden")
    brand.input(lambda: None, None, w["pending_remix"], api_visibility="private", queue=False)
    prompt.change(  # typing, and a remix filling the form
        count_tokens,
        token_inputs,
        w["tokens"],
        api_visibility="private",
        show_progress="hidden",
        trigger_mode="always_last",
    )
    quiet = {"api_visibility": "private", "show_progress": "hidden"}
    for slider in sliders:
        slider.release(count_tokens, token_inputs, w["tokens"], **quiet)
    random_seed = lambda: str(random.randrange(2**32))  # noqa: E731
    w["dice"].click(random_seed, None, parts["seed"], api_visibility="private", queue=False)
    w["reuse"].click(form_.last_seed, w["details"], parts["seed"], api_visibility="private", queue=False)
    timer.tick(run_progress, None, [progress, timer], queue=False, **quiet)
    buttons = ((w["generate"], generate, "generate"), (w["sweep"], sweep, "cfg_sweep"))
    for button, handler, api_name in buttons:
        button.click(run_expected, None, timer, api_visibility="private", queue=False)
        button.click(
            handler,
            inputs,
            outputs,
            api_name=api_name,
            concurrency_id="gpu",
            validator=_over_form(check_form, "check_form"),
            show_progress="hidden",  # the progress line says it, once
        ).then(run_finished, None, [timer, progress], api_visibility="private", queue=False)
    w["cancel"].click(cancel, None, None, api_visibility="private", queue=False)
    filled = (brand, prompt, parts["negative_prompt"], parts["seed"], parts["batch_size"], *form)
    remix_target = RemixTarget(outputs=(*filled, w["pending_remix"]), fill=fill)
    png_drop.connect(services, w["png_file"], w["png_note"], brand, remix_target)
    generate_api.register(services)  # the named API endpoints by keyword (generate_api, brands_api, …)
    return {"on_load": {"fn": list_brands, "inputs": None, "outputs": brand}, "remix_target": remix_target}
