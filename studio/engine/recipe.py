"""Recipes: everything needed to make an image again, and how it travels inside PNG files.

A saved PNG carries two text chunks:

* ``parameters`` — the text A1111 would write (see :mod:`studio.engine.a1111`)::

      <prompt as sent> <lora:name:0.8>
      Negative prompt: <negative prompt>
      Steps: 20, Sampler: Euler a, Schedule type: Uniform, CFG scale: 7, Seed: 42, Size: 64x64, ...

* ``studio_recipe`` — the full :class:`Recipe` as JSON.

This module imports neither torch nor diffusers.
"""

from __future__ import annotations

import functools
import io
import json
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from PIL import Image
from PIL.PngImagePlugin import PngInfo

from studio.errors import NotFoundError, ValidationError

RECIPE_VERSION = 1
#: which kernels computed an image (:mod:`studio.engine.batch_invariant`): they move its last float bits, so
#: a recipe names them and regenerate uses the same
PLAIN_KERNELS, INVARIANT_KERNELS = "plain", "batch-invariant"
KERNELS = (PLAIN_KERNELS, INVARIANT_KERNELS)
PARAMETERS_CHUNK = "parameters"
RECIPE_CHUNK = "studio_recipe"


@dataclass(frozen=True)
class LoraEntry:
    """One LoRA version used: its adapter name, file sha256, weight and (optionally) the version id.

    ``a1111_hash`` is the hash A1111 would show for the file it loads (its kohya export; see
    :mod:`studio.engine.a1111`); it only feeds the ``parameters`` text.
    """

    name: str
    sha256: str
    weight: float
    version_id: str | None = None
    a1111_hash: str | None = None


@dataclass(frozen=True)
class ControlEntry:
    """One ControlNet unit used: template, ControlNet model, control image hash, scale and guidance window."""

    controlnet: str
    control_image_sha256: str
    scale: float = 1.0
    start: float = 0.0
    end: float = 1.0
    template_id: str | None = None


@dataclass(frozen=True)
class EditEntry:
    """How an edited image was made from its source (issue 19): the edit ``kind`` (img2img, inpaint, expand,
    upscale), the denoising ``strength``, the source's hash (``source_sha256``: the stored source file, or
    its pixels) and the parent image's id when it came from the gallery; the painted mask's hash and its
    blur (inpaint), the ``anchor`` (expand), the ``scale`` and the tiles (upscale; ``tile_size`` 0 = one
    pass); ``colour_sigma``: the source's colours kept below this blur radius (None: not applied; see
    :func:`studio.engine.edit_masks.keep_colours`). The recipe's width and height are the output's."""

    kind: str
    strength: float
    source_sha256: str
    parent_image_id: int | None = None
    mask_sha256: str | None = None
    mask_blur: int | None = None
    anchor: str | None = None
    scale: int | None = None
    tile_size: int | None = None
    tile_overlap: int | None = None
    colour_sigma: float | None = None


@dataclass(frozen=True)
class Recipe:
    """A complete, JSON-serialisable description of one generated image (DESIGN.md "recipe").

    ``prompt`` is the prompt as sent to the model (after brand templates), ``prompt_typed`` as the user
    typed it.  ``seed`` is the seed of *this* image (batches use seed, seed+1, ...).  ``base_model_hash``
    identifies the model folder for the studio; ``a1111_model_hash`` is A1111's "Model hash" for the
    ``parameters`` text (see :func:`studio.engine.a1111.model_hash`).  ``guidance`` holds the fields of
    :class:`studio.engine.guidance.Guidance` when the image was made with more than plain CFG (None, and
    absent from the JSON, otherwise). ``edit`` says how an edited image was made from its source
    (:class:`EditEntry`; None, and absent from the JSON, for an image made from text). ``kernels`` names the
    kernels that computed it (:data:`KERNELS`; absent from the JSON when plain).
    """

    base_model: str
    prompt: str
    negative_prompt: str
    sampler: str
    steps: int
    guidance_scale: float
    seed: int
    width: int
    height: int
    prompt_typed: str = ""
    base_model_revision: str | None = None
    base_model_hash: str | None = None
    family: str | None = None
    loras: tuple[LoraEntry, ...] = ()
    controls: tuple[ControlEntry, ...] = ()
    versions: dict[str, str] = field(default_factory=dict)
    recipe_version: int = RECIPE_VERSION
    a1111_model_hash: str | None = None
    guidance: dict[str, Any] | None = None
    edit: EditEntry | None = None
    kernels: str = PLAIN_KERNELS

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["loras"] = [asdict(entry) for entry in self.loras]
        data["controls"] = [asdict(entry) for entry in self.controls]
        if data["guidance"] is None:  # plain CFG: the JSON of recipes without guidance stays as it was
            del data["guidance"]
        if data["edit"] is None:  # made from text: the JSON stays as it was
            del data["edit"]
        if data["kernels"] == PLAIN_KERNELS:  # the JSON of recipes made before batching stays as it was
            del data["kernels"]
        return data

    def to_json(self) -> str:
        """Stable JSON (sorted keys, UTF-8 text kept as is)."""
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        if not isinstance(data, dict):
            raise ValidationError("recipe", "must be a JSON object")
        values = dict(data)
        version = values.get("recipe_version", RECIPE_VERSION)
        if not isinstance(version, int) or version > RECIPE_VERSION:
            raise ValidationError(
                "recipe", f"recipe_version {version!r} is newer than this studio understands"
            )
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValidationError("recipe", f"unknown fields: {', '.join(unknown)}")
        if values.get("guidance") is not None and not isinstance(values["guidance"], dict):
            raise ValidationError("recipe", "guidance must be a JSON object")
        if values.get("edit") is not None and not isinstance(values["edit"], dict):
            raise ValidationError("recipe", "edit must be a JSON object")
        if values.get("kernels", PLAIN_KERNELS) not in KERNELS:
            raise ValidationError("recipe", f"kernels must be one of {', '.join(KERNELS)}")
        try:
            if values.get("edit") is not None:
                values["edit"] = EditEntry(**values["edit"])
            values["loras"] = tuple(LoraEntry(**entry) for entry in values.get("loras", ()))
            values["controls"] = tuple(ControlEntry(**entry) for entry in values.get("controls", ()))
            return cls(**values)
        except TypeError as exc:
            raise ValidationError("recipe", f"malformed recipe: {exc}") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> Recipe:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValidationError("recipe", f"not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def parameters_text(self) -> str:
        """The A1111 ``parameters`` text for this recipe (:func:`studio.engine.a1111.parameters_text`)."""
        from studio.engine.a1111 import parameters_text

        return parameters_text(self)


def library_versions() -> dict[str, str]:
    """Versions of the libraries that decide the pixels (read from package metadata once, no imports)."""
    return dict(_library_versions())


@functools.cache
def _library_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    for name in ("torch", "diffusers", "transformers", "peft"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - optional packages
            continue
    try:
        from studio import __version__ as studio_version

        versions["studio"] = studio_version
    except ImportError:  # pragma: no cover
        pass
    return versions


def png_metadata(recipe: Recipe) -> PngInfo:
    """PNG text chunks for ``recipe``: A1111 ``parameters`` and the JSON ``studio_recipe``."""
    info = PngInfo()
    info.add_text(PARAMETERS_CHUNK, recipe.parameters_text())
    info.add_text(RECIPE_CHUNK, recipe.to_json())
    return info


def png_bytes(image: Image.Image, recipe: Recipe) -> bytes:
    """``image`` encoded as PNG with the recipe chunks (for storage to write atomically)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=png_metadata(recipe))
    return buffer.getvalue()


def read_parameters(png_path: str | Path) -> str | None:
    """The A1111 ``parameters`` text of a PNG, or None when it has none."""
    return _png_text(png_path).get(PARAMETERS_CHUNK)


def read_recipe(png_path: str | Path) -> Recipe:
    """The recipe stored in a PNG written with :func:`png_metadata`."""
    text = _png_text(png_path).get(RECIPE_CHUNK)
    if text is None:
        raise NotFoundError(f"{Path(png_path).name}: the image carries no studio recipe")
    return Recipe.from_json(text)


def _png_text(png_path: str | Path) -> dict[str, str]:
    path = Path(png_path)
    if not path.is_file():
        raise NotFoundError(f"{path}: no such file")
    try:
        with Image.open(path) as image:
            image.load()
            text = getattr(image, "text", None)
            return dict(text) if text else {str(k): v for k, v in image.info.items() if isinstance(v, str)}
    except (OSError, SyntaxError, ValueError) as exc:
        raise ValidationError(path.name, f"not a readable PNG image ({exc})") from None
