"""The Generate form's pieces that are not layout: reading the form into one request, the inline field
messages, the progress line, the token line, the results and the brand's form values.

``generate_tab.render()`` builds the components and ``generate_tab.listen()`` wires them to these.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from studio.errors import StudioError, ValidationError
from studio.services.brand_models import model_name
from studio.services.generation import (  # ui reads engine types through services
    GenerateInput,
    GenerationOptions,
    GenerationResult,
    Guidance,
    PromptCheck,
)
from studio.ui.file_access import image_link, template_link
from studio.ui.generate_api import request_from_fields
from studio.ui.text import escape_markdown

MAX_LORA_SLIDERS = 4  # the handlers take exactly this many weights
CFG_HINT = (
    "How closely images follow the prompt. Low (2-4): looser, more varied, softer; high (10+): literal but "
    "harsher colours and artefacts. 5-8 is a good start. Allowed: 1-30."
)
GUIDANCE_HINT = (
    "How the prompt's pull is applied. Colour-stable keeps backgrounds, colours and outlines true at CFG 5-9 "
    "(frequency-decoupled guidance, in the first 40% of the steps only); APG and rescale soften high CFG. "
    "Not for FLUX models."
)
#: the Guidance control's choices: label → the request's guidance (None: the brand's default)
GUIDANCE_PRESETS: dict[str, dict[str, Any] | None] = {
    "Brand default": None,
    "Plain CFG": {"method": "cfg"},
    "Colour-stable (FDG)": {"method": "fdg", "fdg_low_scale": 2.0, "optimized_scale": True, "stop": 0.4},
    "APG (momentum -0.5)": {"method": "apg", "apg_momentum": -0.5},
    "CFG + rescale 0.7": {"method": "cfg", "rescale": 0.7},
}
#: the form's inputs, in the order the handlers take them (the API's order too)
FORM_FIELDS = (
    "brand",
    "prompt",
    "negative_prompt",
    "cfg",
    "steps",
    "sampler",
    "size",
    "batch_size",
    "seed",
    "lora_names",
    "templates",
    *(f"lora_{i}" for i in range(MAX_LORA_SLIDERS)),
    "guidance",
)
#: a service's field name → the form field that shows its message
_FIELD_OF = {
    "guidance_scale": "cfg",
    "guidance": "guidance",  # guidance.<setting>: under the Guidance control
    "num_inference_steps": "steps",
    "width": "size",
    "height": "size",
    "controls": "templates",
}


# ------------------------------------------------------------------------------------------------ input


def read_seed(value: str | float | None) -> int | None:
    """Blank means random; anything else must be a whole number (the range is the service's check)."""
    text = str(value).strip() if value is not None else ""
    if not text:
        return None
    try:
        number = float(text)
    except ValueError:
        raise ValidationError("seed", f"{text!r} is not a whole number") from None
    if not number.is_integer():
        raise ValidationError("seed", f"{text!r} is not a whole number")
    return int(number)


def _whole(value: float | None) -> int | float | None:
    """A form number as the request's whole number; a fraction stays, for the check to name it."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value


def read_form(values: dict[str, Any]) -> GenerateInput:
    """One request from the form's values (``FORM_FIELDS`` → value), through the API's request builder
    (:func:`studio.ui.generate_api.request_from_fields`); a bad seed is a ValidationError."""
    names = values.get("lora_names") or []
    weights = [values.get(f"lora_{i}") for i in range(MAX_LORA_SLIDERS)]
    batch = values.get("batch_size")
    return request_from_fields(
        {
            "brand": values.get("brand") or "",
            "prompt": values.get("prompt") or "",
            "negative_prompt": values.get("negative_prompt") or "",
            "cfg": values.get("cfg"),
            "steps": _whole(values.get("steps")),
            "seed": read_seed(values.get("seed")),
            "sampler": values.get("sampler") or None,
            "size": values.get("size") or None,
            "loras": dict(zip(names, weights, strict=False)),
            "templates": list(values.get("templates") or ()),
            "batch_size": 1 if batch is None else _whole(batch),
            "guidance": read_guidance(values.get("guidance")),
        }
    )


def read_guidance(label: str | None) -> dict[str, Any] | None:
    """The Guidance control's choice as the request's guidance (blank: the brand's default)."""
    if not label:
        return None
    if label not in GUIDANCE_PRESETS:
        raise ValidationError("guidance", f"{label!r} is not one of {', '.join(GUIDANCE_PRESETS)}")
    return GUIDANCE_PRESETS[label]


def guidance_label(guidance: dict[str, Any] | None) -> str:
    """The control's choice for a request's guidance (a remix): the preset it equals, else the brand's
    default."""
    if guidance is None:
        return "Brand default"
    try:
        wanted = Guidance.from_dict(guidance)
    except ValidationError:
        return "Brand default"
    for label, preset in GUIDANCE_PRESETS.items():
        if preset is not None and Guidance.from_dict(preset) == wanted:
            return label
    return "Brand default"


def guidance_info(options: GenerationOptions) -> str:
    """The Guidance control's hint, with what the brand's default is."""
    default = options.default_guidance
    label = guidance_label(default) if default else "Plain CFG"
    named = label if label != "Brand default" else ", ".join(f"{k} {v}" for k, v in (default or {}).items())
    source = " (the model's recommendation)" if options.guidance_from_model else ""
    return f"{GUIDANCE_HINT} This brand's default: {named}{source}."


def field_messages(problems: tuple[StudioError, ...] | list[StudioError], names: list[str]) -> dict[str, str]:
    """Each problem's message under the form field it is about (a LoRA's under its slider; a refusal that
    names no field under the brand)."""
    messages: dict[str, str] = {}
    for problem in problems:
        name = getattr(problem, "field", "brand") if isinstance(problem, ValidationError) else "brand"
        text = str(problem)
        if name.startswith("loras.") and name[6:] in names:
            name = f"lora_{names.index(name[6:])}"
        name = _FIELD_OF.get(name.split("[")[0].split(".")[0], name)
        if name not in FORM_FIELDS or name == "lora_names":
            name = "brand"
        messages[name] = f"{messages[name]} {text}" if name in messages else text
    return messages


# --------------------------------------------------------------------------------------------- progress


@dataclass
class Run:
    """One browser session's run: the Cancel flag and the progress line the page polls."""

    images: int
    cancel: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.monotonic)
    line: str = "Starting…"
    _first: tuple[float, int] | None = None

    def progress(self, done: int, total: int) -> None:
        """The engine's ``(step over the whole run, total)`` as ``step 12/40 · image 2/4 · ETA 8 s``."""
        now = time.monotonic()
        if self._first is None:  # timed from the first step: loading the model is not denoising
            self._first = (now, done)
        self.line = progress_line(done, total, self.images, self._eta(now, done, total))

    def _eta(self, now: float, done: int, total: int) -> float | None:
        first_time, first_done = self._first or (now, done)
        if done <= first_done:
            return None
        return (now - first_time) / (done - first_done) * (total - done)


def progress_line(done: int, total: int, images: int, eta_s: float | None) -> str:
    """``step 12/40 · image 2/4 · ETA 8 s`` (steps counted within the current image)."""
    images = max(1, images)
    per = max(1, total // images)
    image = min(images, max(1, math.ceil(done / per)))
    step = done - (image - 1) * per
    eta = "ETA …" if eta_s is None else f"ETA {math.ceil(eta_s)} s"
    return f"step {step}/{per} · image {image}/{images} · {eta}"


class Runs:
    """The runs of all browser sessions, by session hash (thread-safe). A click ``expect``s a run; the run
    ``start``s when the handler does, or the check ``refuse``s it (then the page's poll stops)."""

    WAIT_S = 30.0  # a run expected this long ago that never started (a queue that dropped it): stop polling

    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        self._expected: dict[str, float] = {}
        self._refused: dict[str, str] = {}
        self._lock = threading.Lock()

    def expect(self, session: str) -> None:
        with self._lock:
            self._expected[session] = time.monotonic()

    def refuse(self, session: str, why: str) -> None:
        """The check refused the run: ``why`` is the line the poll shows (once) before it stops."""
        with self._lock:
            self._expected.pop(session, None)
            self._refused[session] = why

    def refused(self, session: str) -> str | None:
        with self._lock:
            return self._refused.pop(session, None)

    def waiting(self, session: str) -> bool:
        """Whether a run of ``session`` was asked for and may still start."""
        with self._lock:
            since = self._expected.get(session)
        return since is not None and time.monotonic() - since < self.WAIT_S

    def start(self, session: str, images: int) -> Run:
        run = Run(images=images)
        with self._lock:
            self._runs[session] = run
            self._expected.pop(session, None)
            self._refused.pop(session, None)
        return run

    def get(self, session: str) -> Run | None:
        with self._lock:
            return self._runs.get(session)

    def finish(self, session: str) -> Run | None:
        with self._lock:
            return self._runs.pop(session, None)


def summary(results: list[GenerationResult], requested: int, seconds: float) -> str:
    """The line left after a run: what was made, or what a cancel kept."""
    kept = sum(len(r.images) for r in results)
    if any(r.cancelled for r in results):
        return f"Cancelled: kept {kept} of {requested} image{'s' if requested != 1 else ''}."
    return f"Done: {kept} image{'s' if kept != 1 else ''} in {seconds:.0f} s."


# ------------------------------------------------------------------------------------------------ output


def gallery_items(
    results: list[GenerationResult], request: gr.Request | None, *, by_cfg: bool = False
) -> list[tuple[str, str]]:
    """The results for the gallery: links under their download names ``<brand>-<id>-<seed>.png``."""
    items = []
    for result in results:
        for image in result.images:
            caption = f"CFG {result.cfg:g}" if by_cfg else f"#{image.id} seed {image.seed}"
            if image.palette_flag:
                caption += " · off-palette"
            items.append((image_link(request, image.id, image.download_name), caption))
    return items


def details(results: list[GenerationResult]) -> dict[str, Any]:
    return {
        "generations": [
            {
                "generation_id": r.generation_id,
                "cfg": r.cfg,
                "seed": r.seed,
                "cancelled": r.cancelled,
                "images": [
                    {
                        "id": i.id,
                        "seed": i.seed,
                        "file": i.download_name,
                        "palette_score": i.palette_score,
                        "off_palette": i.palette_flag,
                    }
                    for i in r.images
                ],
            }
            for r in results
        ]
    }


def last_seed(shown: dict[str, Any] | None) -> str | Any:
    """The seed of the last run's first image (the Details panel), for the Reuse seed button."""
    try:
        return str(shown["generations"][0]["images"][0]["seed"])  # type: ignore[index]
    except (TypeError, KeyError, IndexError):
        gr.Info("Generate first: there is no seed to reuse yet.")
        return gr.skip()


def final_prompt(result: GenerationResult) -> str:
    """The prompts as sent to the model (Markdown; the prompts themselves shown as literal text)."""
    negative = escape_markdown(result.negative_prompt) or "(none)"
    return f"**Prompt sent:** {escape_markdown(result.prompt)}\n\n**Negative prompt sent:** {negative}"


def token_line(check: PromptCheck) -> str:
    """``n / max`` tokens, what is cut, the words the model does not know (Markdown)."""
    e = escape_markdown
    if check.problem:
        return f"Sent as: <code>{e(check.prompt)}</code> (tokens not counted: {e(check.problem)})"
    lines = [f"**Tokens: {check.tokens} / {check.limit}** · sent as: <code>{e(check.prompt)}</code>"]
    if check.cut:
        lines.append(
            f"**Cut:** the model reads only the first {check.limit} tokens; it will not see "
            f"*{e(check.cut)}*. Shorten the prompt."
        )
    if check.banned_term:
        lines.append(f"**Banned:** *{e(check.banned_term)}* is banned by this brand.")
    if check.unknown_words:
        lines.append(
            f"**Unknown to this model:** {', '.join(e(w) for w in check.unknown_words)} (it will guess)."
        )
    if check.known_words:
        lines.append(
            f"<details><summary>Words this model knows ({len(check.known_words)})</summary>"
            f"{', '.join(e(w) for w in check.known_words)}</details>"
        )
    return "\n\n".join(lines)


# ------------------------------------------------------------------------------------------ brand values


def _size_name(options: GenerationOptions, width: int | None, height: int | None) -> str | None:
    """The brand's size preset of ``width``×``height``, else ``"WIDTHxHEIGHT"`` (None when no size)."""
    if width is None or height is None:
        return None
    for name, w, h in options.sizes:
        if (w, h) == (width, height):
            return name
    return f"{width}x{height}"


def availability(options: GenerationOptions) -> str:
    """The brand's model, and the LoRAs and templates shown disabled because they do not fit it."""
    family = f" ({options.model_family})" if options.model_family else ""
    e = escape_markdown
    shown = model_name(options.base_model)  # a local folder by its name, never its server path
    lines = [f"**Model:** <code>{e(shown)}</code>{family}"] if options.base_model else []
    lines += [f"- LoRA **{e(name)}** is disabled: {e(why)}" for name, why in options.lora_issues]
    lines += [f"- Template **{e(name)}** is disabled: {e(why)}" for name, why in options.template_issues]
    return "\n".join(lines)


def steps_info(options: GenerationOptions) -> str:
    """The Steps field's hint: the range this brand's model allows, and its images per run."""
    if options.limits is None:
        return "1-150."
    return f"1-{options.limits.steps}; up to {options.limits.images} images per run with this model."


def size_info(options: GenerationOptions) -> str:
    """The Size field's hint: the brand's presets, and whether WIDTHxHEIGHT is allowed (up to what)."""
    if not options.allow_custom_sizes:
        return "The brand's channel sizes."
    most = f" up to {options.limits.pixels:,} pixels" if options.limits is not None else ""
    return f"The brand's channel sizes, or type WIDTHxHEIGHT{most}."


def form_updates(
    options: GenerationOptions, ask: GenerateInput | None, request: gr.Request | None = None
) -> list[Any]:
    """cfg, steps, sampler, size, LoRA names, templates, thumbnails, the model note, the LoRA sliders and
    the guidance:
    the brand's defaults, or ``ask``'s values where it has them (a remix). LoRAs and templates that do
    not fit the brand's model are disabled (weight 0) or left out of the choices, with the reason. The
    thumbnails are links to the templates' pictures (:func:`template_link`; none without a ``request``)."""
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
    return [
        gr.update(value=options.default_cfg if ask.cfg is None else ask.cfg),  # never clamped
        gr.update(value=options.default_steps if ask.steps is None else ask.steps, info=steps_info(options)),
        gr.update(choices=list(options.samplers), value=ask.sampler or options.default_sampler),
        gr.update(choices=sizes, value=size_value, info=size_info(options)),
        [name for name, _, _ in loras],
        gr.update(choices=usable, value=[t for t in ask.templates if t in usable]),
        [
            (template_link(request, options.brand_slug, name), name)
            for name, image in options.thumbnails
            if image is not None and name in usable and request is not None
        ],
        availability(options),
        *lora_updates,
        gr.update(value=guidance_label(ask.guidance), info=guidance_info(options)),
    ]
