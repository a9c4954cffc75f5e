"""Brand profiles as files: parse and validate ``brands/<slug>/brand.toml``, and write it back.

Every problem raises :class:`~studio.errors.ValidationError` whose field names the file and the key, e.g.
``brands/lagoon/brand.toml: palette[2]: 'tealish' is not a colour``. The same validation serves the UI's
brand form through :func:`spec_from_mapping`.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from studio import text_limits as limits
from studio.colours import NAMED_COLOURS
from studio.db.models import LORA_KINDS
from studio.engine.guidance_settings import Guidance
from studio.errors import ValidationError

BRAND_FILE = "brand.toml"

#: Sampler names a brand may default to; equal to ``studio.engine.samplers.SAMPLERS`` (a test keeps them
#: equal; this module stays free of torch/diffusers imports).
SAMPLERS: tuple[str, ...] = ("Euler", "Euler a", "DPM++ 2M", "DPM++ 2M Karras", "DDIM", "UniPC", "LCM")
#: ControlNet preprocessors a layout template may name; equal to ``studio.engine.control.PREPROCESSORS``.
#: ``none``: the image already is the control map. Only the first four work without downloaded weights.
PREPROCESSORS: tuple[str, ...] = (
    "canny",
    "shuffle",
    "lineart_standard",
    "none",
    "hed",
    "pidinet",
    "mlsd",
    "lineart",
    "lineart_anime",
    "openpose",
    "midas",
    "zoe",
    "normalbae",
    "leres",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
HEX_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
PLACEHOLDER_RE = re.compile(r"\{[^{}]*\}")

DEFAULT_CFG = 7.0
DEFAULT_STEPS = 20
DEFAULT_SAMPLER = "Euler a"

_TOP_KEYS = (
    "slug",
    "name",
    "description",
    "base_model",
    "palette",
    "palette_threshold",
    "style_template",
    "negative_prompt",
    "banned_terms",
    "defaults",
    "sizes",
    "allow_custom_sizes",
    "credentials_include_prompt",
    "loras",
    "templates",
)
_DEFAULTS_KEYS = ("cfg", "steps", "sampler", "size", "guidance")
_SIZE_KEYS = ("name", "channel", "width", "height")
_LORA_KEYS = ("name", "file", "kind", "trigger_words", "default_weight", "base_model")
_TEMPLATE_KEYS = (
    "name",
    "image",
    "preprocessor",
    "conditioning_scale",
    "guidance_start",
    "guidance_end",
    "controlnet_model",
)


@dataclass(frozen=True)
class SizePreset:
    """An output size for a channel, e.g. ``square 1:1`` for the ``feed`` channel."""

    name: str
    channel: str
    width: int
    height: int

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "channel": self.channel, "width": self.width, "height": self.height}


@dataclass(frozen=True)
class LoraSpec:
    """A LoRA entry of a brand file; ``file`` is relative to the brand's folder.

    ``base_model``: the model the file was trained on (a hub id, a folder or ``embedded:…``); sync records
    its family with the version, so the LoRA shows as not fitting when the brand's model is of another
    family. None: made for the brand's own model.
    """

    name: str
    file: str
    kind: str = "style"
    trigger_words: tuple[str, ...] = ()
    default_weight: float = 1.0
    base_model: str | None = None


@dataclass(frozen=True)
class TemplateSpec:
    """A layout (ControlNet) template entry; ``image`` is relative to the brand's folder.

    ``controlnet_model``: the template's own ControlNet (a diffusers folder, relative to the brand's folder or
    absolute, a cached hub repo id or ``embedded:…``); None = the base model's own. Sync checks that it
    exists and fits the base model.
    """

    name: str
    image: str
    preprocessor: str = "canny"
    conditioning_scale: float = 1.0
    guidance_start: float = 0.0
    guidance_end: float = 1.0
    controlnet_model: str | None = None


@dataclass(frozen=True)
class BrandSpec:
    """A validated brand profile (palette normalised to lowercase ``#rrggbb``)."""

    slug: str
    name: str
    palette: tuple[str, ...]
    style_template: str
    description: str = ""
    base_model: str | None = None  # a pinned model; None = the studio default (follows STUDIO_BASE_MODEL)
    palette_threshold: float | None = None
    negative_prompt: str = ""
    banned_terms: tuple[str, ...] = ()
    size_presets: tuple[SizePreset, ...] = ()
    default_size: str | None = None
    #: whether a size outside the presets (``WIDTHxHEIGHT``) may be asked for; off unless an admin allows it
    allow_custom_sizes: bool = False
    #: whether the prompts go into the images' Content Credentials (C2PA); off: campaign prompts stay private
    credentials_include_prompt: bool = False
    default_cfg: float = DEFAULT_CFG
    default_steps: int = DEFAULT_STEPS
    default_sampler: str = DEFAULT_SAMPLER
    #: ``[defaults.guidance]``: the fields of :class:`studio.engine.guidance_settings.Guidance` that differ
    #: from plain CFG; None = plain CFG
    default_guidance: dict[str, Any] | None = None
    loras: tuple[LoraSpec, ...] = field(default=())
    templates: tuple[TemplateSpec, ...] = field(default=())


# ---------------------------------------------------------------------------------------------- validation


class _Checker:
    """Validation helpers that prefix every error with the source (file) name."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, key: str, message: str) -> ValidationError:
        return ValidationError(f"{self.source}: {key}" if key else self.source, message)

    def keys(self, table: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
        allowed = tuple(allowed)
        unknown = sorted(k for k in table if k not in allowed)
        if unknown:
            key = f"{where}.{unknown[0]}" if where else unknown[0]
            raise self.fail(key, f"unknown key (allowed: {', '.join(allowed)})")

    def string(
        self, value: Any, key: str, *, required: bool = False, max_len: int = limits.BRAND_TEMPLATE
    ) -> str:
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, not {type(value).__name__}")
        value = value.strip()
        if required and not value:
            raise self.fail(key, "must not be empty")
        if len(value) > max_len:
            raise self.fail(key, f"is {len(value):,} characters long; at most {max_len:,} are allowed")
        return value

    def number(self, value: Any, key: str, low: float, high: float) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise self.fail(key, f"must be a number, not {value!r}")
        if not low <= value <= high:
            raise self.fail(key, f"must be between {low:g} and {high:g}, not {value:g}")
        return float(value)

    def integer(self, value: Any, key: str, low: int, high: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be a whole number, not {value!r}")
        if not low <= value <= high:
            raise self.fail(key, f"must be between {low} and {high}, not {value}")
        return value

    def string_list(self, value: Any, key: str, max_items: int) -> tuple[str, ...]:
        if not isinstance(value, list | tuple):
            raise self.fail(key, "must be a list of strings")
        self.count(value, key, max_items)
        item = limits.LIST_ITEM
        return tuple(self.string(v, f"{key}[{i}]", required=True, max_len=item) for i, v in enumerate(value))

    def table_list(self, value: Any, key: str, max_items: int) -> list[Mapping[str, Any]]:
        if not isinstance(value, list | tuple) or not all(isinstance(v, Mapping) for v in value):
            raise self.fail(key, f"must be a list of tables ([[{key}]])")
        self.count(value, key, max_items)
        return list(value)

    def count(self, items: list[Any] | tuple[Any, ...], key: str, max_items: int) -> None:
        if len(items) > max_items:
            raise self.fail(key, f"has {len(items):,} items; at most {max_items:,} are allowed")

    def relative_file(self, value: Any, key: str, suffixes: tuple[str, ...]) -> str:
        text = self.string(value, key, required=True, max_len=500).replace("\\", "/")
        path = PurePosixPath(text)
        if path.is_absolute() or ".." in path.parts or re.match(r"^[A-Za-z]:", text):
            raise self.fail(key, f"{text!r} must be a path inside the brand folder")
        if path.suffix.lower() not in suffixes:
            raise self.fail(key, f"{text!r} must end with {' or '.join(suffixes)}")
        return str(path)


def normalise_colour(value: Any, key: str = "palette", source: str = "brand") -> str:
    """``#abc``, ``#AABBCC`` or a toy-world colour name (``teal``) → ``#aabbcc``."""
    check = _Checker(source)
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in NAMED_COLOURS:
            return NAMED_COLOURS[text.lower()]
        if HEX_RE.match(text):
            digits = text[1:].lower()
            if len(digits) == 3:
                digits = "".join(c * 2 for c in digits)
            return f"#{digits}"
    names = ", ".join(NAMED_COLOURS)
    raise check.fail(key, f"{value!r} is not a colour (use #rrggbb or one of: {names})")


def check_style_template(template: Any, key: str = "style_template", source: str = "brand") -> str:
    """A style template must contain ``{prompt}`` and no other placeholder."""
    check = _Checker(source)
    text = check.string(template, key, required=True)
    if "{prompt}" not in text:
        raise check.fail(key, "must contain {prompt}")
    others = sorted({p for p in PLACEHOLDER_RE.findall(text) if p != "{prompt}"})
    if others:
        raise check.fail(key, f"unknown placeholder {others[0]} (only {{prompt}} is allowed)")
    return text


def lora_from_mapping(entry: Mapping[str, Any], source: str = "lora", key: str = "") -> LoraSpec:
    """Validate one LoRA entry (``name``, ``file``, ``kind``, ``trigger_words``, ``default_weight``)."""
    check = _Checker(source)
    prefix = f"{key}." if key else ""
    if not isinstance(entry, Mapping):
        raise check.fail(key, "must be a table")
    check.keys(entry, _LORA_KEYS, key)
    for required in ("name", "file"):
        if required not in entry:
            raise check.fail(f"{prefix}{required}", "is required")
    name = check.string(entry["name"], f"{prefix}name", required=True)
    if not NAME_RE.match(name):
        raise check.fail(f"{prefix}name", f"{name!r} must be lowercase letters, digits, '-' or '_'")
    kind = check.string(entry.get("kind", "style"), f"{prefix}kind", required=True)
    if kind not in LORA_KINDS:
        raise check.fail(f"{prefix}kind", f"must be one of {', '.join(LORA_KINDS)}, not {kind!r}")
    return LoraSpec(
        name=name,
        file=check.relative_file(entry["file"], f"{prefix}file", (".safetensors",)),
        kind=kind,
        trigger_words=check.string_list(
            entry.get("trigger_words", []), f"{prefix}trigger_words", limits.TRIGGER_WORDS
        ),
        default_weight=check.number(entry.get("default_weight", 1.0), f"{prefix}default_weight", -2.0, 2.0),
        base_model=check.string(
            entry.get("base_model", ""), f"{prefix}base_model", max_len=limits.BRAND_MODEL
        )
        or None,
    )


def spec_from_mapping(
    data: Mapping[str, Any], source: str = "brand", default_slug: str | None = None
) -> BrandSpec:
    """Validate a brand profile given as a mapping (a parsed brand.toml or a UI form)."""
    check = _Checker(source)
    if not isinstance(data, Mapping):
        raise check.fail("", "must be a table of brand settings")
    check.keys(data, _TOP_KEYS, "")

    slug_value = data.get("slug", default_slug)
    if slug_value is None:
        raise check.fail("slug", "is required")
    slug = check.string(slug_value, "slug", required=True, max_len=63)
    if not SLUG_RE.match(slug):
        raise check.fail(
            "slug", f"{slug!r} must be lowercase letters, digits and '-' (start with a letter/digit)"
        )
    if "name" not in data:
        raise check.fail("name", "is required")
    name = check.string(data["name"], "name", required=True, max_len=limits.BRAND_NAME)
    description = check.string(data.get("description", ""), "description", max_len=limits.BRAND_DESCRIPTION)
    base_model = None  # absent or "default": the studio default (follows STUDIO_BASE_MODEL)
    if data.get("base_model") is not None:
        base_model = check.string(data["base_model"], "base_model", required=True, max_len=limits.BRAND_MODEL)
        base_model = None if base_model.strip().lower() == "default" else base_model

    if "palette" not in data:
        raise check.fail("palette", "is required (a list of #rrggbb colours)")
    raw_palette = data["palette"]
    if not isinstance(raw_palette, list | tuple) or not raw_palette:
        raise check.fail("palette", "must be a non-empty list of colours")
    if len(raw_palette) > 16:
        raise check.fail("palette", "has more than 16 colours")
    palette = tuple(normalise_colour(c, f"palette[{i}]", source) for i, c in enumerate(raw_palette))
    for i, colour in enumerate(palette):
        if colour in palette[:i]:
            raise check.fail(f"palette[{i}]", f"{colour} is listed twice")
    threshold = None
    if data.get("palette_threshold") is not None:
        threshold = check.number(data["palette_threshold"], "palette_threshold", 0.0, 1.0)

    if "style_template" not in data:
        raise check.fail("style_template", "is required and must contain {prompt}")
    style_template = check_style_template(data["style_template"], "style_template", source)
    negative_prompt = check.string(data.get("negative_prompt", ""), "negative_prompt")
    banned_terms = check.string_list(data.get("banned_terms", []), "banned_terms", limits.BANNED_TERMS)

    sizes: list[SizePreset] = []
    for i, entry in enumerate(check.table_list(data.get("sizes", []), "sizes", limits.BRAND_SIZES)):
        key = f"sizes[{i}]"
        check.keys(entry, _SIZE_KEYS, key)
        for required in ("name", "width", "height"):
            if required not in entry:
                raise check.fail(f"{key}.{required}", "is required")
        preset = SizePreset(
            name=check.string(entry["name"], f"{key}.name", required=True, max_len=64),
            channel=check.string(
                entry.get("channel", "default"), f"{key}.channel", required=True, max_len=64
            ),
            width=check.integer(entry["width"], f"{key}.width", 8, 4096),
            height=check.integer(entry["height"], f"{key}.height", 8, 4096),
        )
        for side in ("width", "height"):
            if getattr(preset, side) % 8:
                raise check.fail(f"{key}.{side}", f"must be a multiple of 8, not {getattr(preset, side)}")
        if any(p.name == preset.name for p in sizes):
            raise check.fail(f"{key}.name", f"size preset {preset.name!r} is listed twice")
        sizes.append(preset)

    allow_custom_sizes = data.get("allow_custom_sizes", False)
    if not isinstance(allow_custom_sizes, bool):
        raise check.fail("allow_custom_sizes", f"must be true or false, not {allow_custom_sizes!r}")
    include_prompt = data.get("credentials_include_prompt", False)
    if not isinstance(include_prompt, bool):
        raise check.fail("credentials_include_prompt", f"must be true or false, not {include_prompt!r}")

    defaults = data.get("defaults", {})
    if not isinstance(defaults, Mapping):
        raise check.fail("defaults", "must be a table ([defaults])")
    check.keys(defaults, _DEFAULTS_KEYS, "defaults")
    cfg = check.number(defaults.get("cfg", DEFAULT_CFG), "defaults.cfg", 0.0, 30.0)
    steps = check.integer(defaults.get("steps", DEFAULT_STEPS), "defaults.steps", 1, 150)
    sampler = check.string(defaults.get("sampler", DEFAULT_SAMPLER), "defaults.sampler", required=True)
    if sampler not in SAMPLERS:
        raise check.fail(
            "defaults.sampler", f"unknown sampler {sampler!r} (choose from {', '.join(SAMPLERS)})"
        )
    default_guidance = guidance_from_mapping(defaults.get("guidance"), check)
    default_size = None
    if defaults.get("size") is not None:
        default_size = check.string(defaults["size"], "defaults.size", required=True)
        if default_size not in {p.name for p in sizes}:
            raise check.fail("defaults.size", f"{default_size!r} is not one of the [[sizes]] presets")
    elif sizes:
        default_size = sizes[0].name

    loras: list[LoraSpec] = []
    for i, entry in enumerate(check.table_list(data.get("loras", []), "loras", limits.BRAND_LORAS)):
        key = f"loras[{i}]"
        lora = lora_from_mapping(entry, source, key)
        if any(x.name == lora.name for x in loras):
            raise check.fail(f"{key}.name", f"LoRA {lora.name!r} is listed twice")
        loras.append(lora)

    templates: list[TemplateSpec] = []
    template_tables = check.table_list(data.get("templates", []), "templates", limits.BRAND_TEMPLATES)
    for i, entry in enumerate(template_tables):
        key = f"templates[{i}]"
        check.keys(entry, _TEMPLATE_KEYS, key)
        for required in ("name", "image"):
            if required not in entry:
                raise check.fail(f"{key}.{required}", "is required")
        template_name = check.string(entry["name"], f"{key}.name", required=True)
        if not NAME_RE.match(template_name):
            raise check.fail(
                f"{key}.name", f"{template_name!r} must be lowercase letters, digits, '-' or '_'"
            )
        if any(t.name == template_name for t in templates):
            raise check.fail(f"{key}.name", f"template {template_name!r} is listed twice")
        preprocessor = check.string(entry.get("preprocessor", "canny"), f"{key}.preprocessor", required=True)
        if preprocessor not in PREPROCESSORS:
            choices = ", ".join(PREPROCESSORS)
            raise check.fail(
                f"{key}.preprocessor", f"unknown preprocessor {preprocessor!r} (choose from {choices})"
            )
        start = check.number(entry.get("guidance_start", 0.0), f"{key}.guidance_start", 0.0, 1.0)
        end = check.number(entry.get("guidance_end", 1.0), f"{key}.guidance_end", 0.0, 1.0)
        if start >= end:
            raise check.fail(f"{key}.guidance_end", f"must be greater than guidance_start ({start:g})")
        controlnet = check.string(entry.get("controlnet_model", ""), f"{key}.controlnet_model", max_len=500)
        templates.append(
            TemplateSpec(
                name=template_name,
                image=check.relative_file(entry["image"], f"{key}.image", IMAGE_SUFFIXES),
                preprocessor=preprocessor,
                conditioning_scale=check.number(
                    entry.get("conditioning_scale", 1.0), f"{key}.conditioning_scale", 0.0, 2.0
                ),
                guidance_start=start,
                guidance_end=end,
                controlnet_model=controlnet or None,
            )
        )

    return BrandSpec(
        slug=slug,
        name=name,
        description=description,
        base_model=base_model,
        palette=palette,
        palette_threshold=threshold,
        style_template=style_template,
        negative_prompt=negative_prompt,
        banned_terms=banned_terms,
        size_presets=tuple(sizes),
        default_size=default_size,
        allow_custom_sizes=allow_custom_sizes,
        credentials_include_prompt=include_prompt,
        default_cfg=cfg,
        default_steps=steps,
        default_sampler=sampler,
        default_guidance=default_guidance,
        loras=tuple(loras),
        templates=tuple(templates),
    )


def parse_brand_file(path: Path) -> BrandSpec:
    """Read and validate one ``brand.toml``; the slug defaults to the folder's name."""
    path = Path(path)
    source = str(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ValidationError(source, f"cannot read file ({exc.strerror or exc})") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValidationError(source, "malformed TOML: file is not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(source, f"malformed TOML: {exc}") from None
    return spec_from_mapping(data, source=source, default_slug=path.parent.name)


def find_brand_files(path: Path) -> list[Path]:
    """``path`` is a brand.toml, a brand folder, or a folder of brand folders; returns brand.toml files."""
    path = Path(path)
    if path.is_file():
        if path.name != BRAND_FILE:
            raise ValidationError(str(path), f"expected a {BRAND_FILE} file or a folder of brands")
        return [path]
    if not path.is_dir():
        raise ValidationError(str(path), "no such file or folder")
    if (path / BRAND_FILE).is_file():
        return [path / BRAND_FILE]
    files = sorted(p / BRAND_FILE for p in path.iterdir() if (p / BRAND_FILE).is_file())
    if not files:
        raise ValidationError(str(path), f"no {BRAND_FILE} found (expected <slug>/{BRAND_FILE} inside)")
    return files


# ------------------------------------------------------------------------------------------------- writing


def guidance_from_mapping(value: Any, check: _Checker) -> dict[str, Any] | None:
    """A brand's ``[defaults.guidance]`` table, checked: only the fields that differ from plain CFG, or
    None for plain CFG (or no table)."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise check.fail("defaults.guidance", "must be a table ([defaults.guidance])")
    try:
        guidance = Guidance.from_dict(value)
    except ValidationError as exc:
        raise check.fail(f"defaults.{exc.field}", str(exc).split(": ", 1)[-1]) from None
    return compact_guidance(guidance)


def compact_guidance(guidance: Guidance) -> dict[str, Any] | None:
    """The fields of ``guidance`` that differ from their defaults; None for plain CFG."""
    if guidance.is_plain:
        return None
    plain = Guidance().to_dict()
    return {k: v for k, v in guidance.to_dict().items() if v != plain[k] or k == "method"}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def render_brand_toml(spec: BrandSpec) -> str:
    """The brand file for ``spec``: deterministic, and parsing it gives back ``spec``."""
    lines = [f"# Brand profile for {spec.slug} (written by `studio brands export`)."]
    top: list[tuple[str, Any]] = [
        ("slug", spec.slug),
        ("name", spec.name),
        ("description", spec.description),
    ]
    if spec.base_model:
        top.append(("base_model", spec.base_model))
    top += [("palette", list(spec.palette))]
    if spec.palette_threshold is not None:
        top.append(("palette_threshold", spec.palette_threshold))
    top += [
        ("style_template", spec.style_template),
        ("negative_prompt", spec.negative_prompt),
        ("banned_terms", list(spec.banned_terms)),
    ]
    if spec.allow_custom_sizes:
        top.append(("allow_custom_sizes", True))
    # written either way: whoever reads the file sees whether the prompts go into the Content Credentials
    top.append(("credentials_include_prompt", spec.credentials_include_prompt))
    lines += [f"{k} = {_toml_value(v)}" for k, v in top]
    lines += ["", "[defaults]", f"cfg = {_toml_value(spec.default_cfg)}", f"steps = {spec.default_steps}"]
    lines.append(f"sampler = {_toml_value(spec.default_sampler)}")
    if spec.default_size is not None:
        lines.append(f"size = {_toml_value(spec.default_size)}")
    if spec.default_guidance:
        lines += ["", "[defaults.guidance]"]
        lines += [f"{k} = {_toml_value(v)}" for k, v in spec.default_guidance.items()]
    for preset in spec.size_presets:
        lines += ["", "[[sizes]]"] + [f"{k} = {_toml_value(v)}" for k, v in preset.as_dict().items()]
    for lora in spec.loras:
        lines += [
            "",
            "[[loras]]",
            f"name = {_toml_value(lora.name)}",
            f"file = {_toml_value(lora.file)}",
            f"kind = {_toml_value(lora.kind)}",
            f"trigger_words = {_toml_value(list(lora.trigger_words))}",
            f"default_weight = {_toml_value(lora.default_weight)}",
        ]
        if lora.base_model:
            lines.append(f"base_model = {_toml_value(lora.base_model)}")
    for t in spec.templates:
        lines += [
            "",
            "[[templates]]",
            f"name = {_toml_value(t.name)}",
            f"image = {_toml_value(t.image)}",
            f"preprocessor = {_toml_value(t.preprocessor)}",
            f"conditioning_scale = {_toml_value(t.conditioning_scale)}",
            f"guidance_start = {_toml_value(t.guidance_start)}",
            f"guidance_end = {_toml_value(t.guidance_end)}",
        ]
        if t.controlnet_model:
            lines.append(f"controlnet_model = {_toml_value(t.controlnet_model)}")
    return "\n".join(lines) + "\n"
