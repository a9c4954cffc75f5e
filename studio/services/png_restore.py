"""Settings from a PNG, the studio's own or another tool's, as a new request of the current user.

* A studio PNG carries the JSON recipe (``studio_recipe``). When its pixels are those of an image of this
  studio that the user may see, the settings are that image's (the Gallery's Remix), and a regenerate
  makes it again from its stored recipe (same pixels). When the image exists but the user may not see it,
  the PNG is refused like the image. A studio PNG from elsewhere is read from its recipe, for a brand the
  user names. Its regenerate, when the recipe is an edit's, makes the edit again from the source and mask
  the recipe names by hash, if they are in the studio's store; otherwise it is refused, saying the source
  image is needed (never a text-to-image of the recipe: that would be another picture).
* An A1111 PNG, or a ComfyUI PNG saved by an A1111-compatible saver, carries ``parameters``
  (:mod:`studio.engine.a1111_parse`). ComfyUI's own PNGs carry only its ``prompt``/``workflow`` graph,
  which is not read.

What does not map to the brand is named in :attr:`PngSettings.unmapped` and left to the brand's default: a
LoRA the brand has not, a model other than the brand's, a sampler the studio has not, a size the brand does
not allow, fields the studio does not use. Everything then goes through
:meth:`GenerationService.generate <studio.services.generation.GenerationService.generate>` like any request:
the user's role and membership, banned terms and limits of the brand apply.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image as PILImage
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from studio.db.generation_models import Image
from studio.engine.a1111_parse import lora_tags, parse_parameters, studio_sampler
from studio.engine.control import image_sha256
from studio.engine.recipe import PARAMETERS_CHUNK, RECIPE_CHUNK, Recipe
from studio.engine.request import ProgressCallback
from studio.errors import NotFoundError, ValidationError
from studio.services.brand_models import model_name
from studio.services.editing import EditingService
from studio.services.gallery import GalleryService
from studio.services.generation import GenerateInput, GenerationOptions, GenerationResult, GenerationService
from studio.services.generation_input import MAX_LORA_WEIGHT, MIN_LORA_WEIGHT
from studio.services.permissions import require_role
from studio.services.views import Actor
from studio.services.visibility import visibility_clause

#: fields of a ``parameters`` text that are read (or that say nothing about the pixels)
_READ_FIELDS = {
    "Steps", "Sampler", "Schedule type", "CFG scale", "Seed", "Size-1", "Size-2", "Model", "Model hash",
    "RNG", "Lora hashes", "TI hashes", "Version",
}  # fmt: skip


@dataclass(frozen=True)
class PngSettings:
    """What a PNG asks for as a request of the brand, and what of it did not map (one line each).

    ``source``: ``"studio"`` (the JSON recipe) or ``"a1111"`` (the ``parameters`` text); ``image_id``: the
    studio image the PNG holds, when the user may see it (a regenerate then uses its stored recipe);
    ``edit``: the edit kind when the PNG is an edited studio image this studio does not have (a regenerate
    then makes the edit again from its stored source, or refuses).
    """

    source: str
    request: GenerateInput
    unmapped: tuple[str, ...] = ()
    image_id: int | None = None
    edit: str | None = None


class PngRestore:
    """Read a PNG's settings for a brand; regenerate it or generate from it (with overrides)."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        generation: GenerationService,
        gallery: GalleryService,
        editing: EditingService | None = None,
    ) -> None:
        self._sessions = sessions
        self._generation = generation
        self._gallery = gallery
        self._editing = editing

    @classmethod
    def of(cls, services: Any) -> PngRestore:
        """The restore service over a :class:`~studio.services.container.Services`."""
        return cls(services.sessions, services.generation, services.gallery, services.editing)

    def read(
        self, actor: Actor, path: str | Path, brand: str | None = None, *, fallback_brand: str | None = None
    ) -> PngSettings:
        """The settings of the PNG at ``path`` as a request of ``brand`` (a studio image's own brand when
        ``brand`` is None; ``fallback_brand`` for any other PNG); see the module docstring."""
        name = Path(path).name
        text, pixels = _png_text_and_pixels(path)
        if RECIPE_CHUNK in text:
            image_id, image_brand = self._studio_image(actor, pixels, name)
            if image_id is not None and (brand is None or brand == image_brand):
                return PngSettings("studio", self._gallery.remix(actor, image_id), image_id=image_id)
            recipe = Recipe.from_json(text[RECIPE_CHUNK])
            settings = self._from_recipe(
                actor, recipe, _needs_brand(brand or image_brand or fallback_brand, name)
            )
            return settings if recipe.edit is None else replace(settings, edit=recipe.edit.kind)
        if PARAMETERS_CHUNK in text:
            return self._from_parameters(
                actor, text[PARAMETERS_CHUNK], _needs_brand(brand or fallback_brand, name)
            )
        if "workflow" in text or "prompt" in text:
            raise ValidationError(
                "png",
                f"{name}: a ComfyUI workflow PNG without A1111 'parameters' cannot be read; save it with an "
                "A1111-compatible saver node, or copy its settings by hand",
            )
        raise ValidationError("png", f"{name}: the PNG carries no generation settings")

    def regenerate(
        self,
        actor: Actor,
        path: str | Path,
        brand: str | None = None,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> tuple[GenerationResult, PngSettings]:
        """The PNG made again: a studio image the user may see from its stored recipe (same pixels); an
        edited studio image this studio does not have from its recipe and the stored source and mask it
        names (same pixels; refused when they are not stored); anything else as :meth:`generate` with no
        overrides."""
        settings = self.read(actor, path, brand)
        if settings.image_id is not None:
            result = self._generation.regenerate(actor, settings.image_id, progress=progress, cancel=cancel)
            return result, settings
        if settings.edit is not None:
            if self._editing is None:
                raise ValidationError(
                    "png", f"{Path(path).name} is an edit; this studio was built without editing"
                )
            recipe = Recipe.from_json(_png_text_and_pixels(path)[0][RECIPE_CHUNK])
            name = Path(path).name
            result = self._editing.regenerate_recipe(actor, recipe, settings.request.brand, name, progress)
            return result, settings
        result = self._generation.generate(actor, settings.request, progress=progress, cancel=cancel)
        return result, settings

    def generate(
        self,
        actor: Actor,
        path: str | Path,
        overrides: Mapping[str, Any] | None = None,
        brand: str | None = None,
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
    ) -> tuple[GenerationResult, PngSettings]:
        """A new generation with the PNG's settings and ``overrides`` (GenerateInput fields; ``loras`` are
        merged with the PNG's)."""
        settings = self.read(actor, path, brand)
        request = with_overrides(settings.request, overrides or {})
        result = self._generation.generate(actor, request, progress=progress, cancel=cancel)
        return result, replace(settings, request=request)

    def may_generate(self, actor: Actor) -> None:
        """Refuse (PermissionDeniedError) unless ``actor`` generates: a marketer or an admin."""
        with self._sessions() as session:
            require_role(session, actor, "marketer")

    # ------------------------------------------------------------------------------------------ reading

    def _studio_image(self, actor: Actor, pixels: str, name: str) -> tuple[int | None, str | None]:
        """(id, brand slug) of a studio image with these pixels that ``actor`` may see; (None, None) when
        the studio has none; NotFoundError when it has one the actor may not see."""
        from studio.db.models import Brand

        with self._sessions() as session:
            query = select(Image.id, Brand.slug).join(Brand, Brand.id == Image.brand_id)
            query = query.where(Image.pixel_sha256 == pixels).order_by(Image.id)
            if session.execute(query.limit(1)).first() is None:
                return None, None
            clause = visibility_clause(session, actor)
            row = session.execute((query if clause is None else query.where(clause)).limit(1)).first()
        if row is None:
            raise NotFoundError(f"{name}: the studio image in this PNG is not one you may see")
        return int(row[0]), str(row[1])

    def _from_recipe(self, actor: Actor, recipe: Recipe, brand: str) -> PngSettings:
        options = self._generation.options(actor, brand)
        notes = _model_note(options, recipe.base_model, None)
        if recipe.controls:
            notes.append(f"{len(recipe.controls)} ControlNet unit(s) of another studio: not used")
        ask = GenerateInput(
            brand=options.brand_slug,
            prompt=recipe.prompt_typed or recipe.prompt,
            negative_prompt=recipe.negative_prompt,
            cfg=recipe.guidance_scale,
            steps=recipe.steps,
            seed=recipe.seed,
            sampler=recipe.sampler if recipe.sampler in options.samplers else None,
            guidance=recipe.guidance or _plain_cfg(options),
        )
        if ask.sampler is None:
            notes.append(f"sampler {recipe.sampler!r} is not one of this model's; {options.default_sampler}")
        loras = [(entry.name, str(entry.weight)) for entry in recipe.loras]
        return self._fitted(options, ask, loras, (recipe.width, recipe.height), notes, "studio")

    def _from_parameters(self, actor: Actor, text: str, brand: str) -> PngSettings:
        options = self._generation.options(actor, brand)
        info = parse_parameters(text)
        fields = info.fields
        prompt, loras, others = lora_tags(info.prompt)
        negative, _, negative_others = lora_tags(info.negative_prompt)
        notes = _model_note(options, fields.get("Model"), fields.get("Model hash"))
        notes += [f"{tag}: not used (the studio reads only LoRA tags)" for tag in others + negative_others]
        sampler = studio_sampler(fields.get("Sampler"), fields.get("Schedule type"))
        if fields.get("Sampler") and sampler not in options.samplers:
            asked = fields["Sampler"] + (
                f" ({fields['Schedule type']})" if fields.get("Schedule type") else ""
            )
            notes.append(f"sampler {asked!r} has no match here; {options.default_sampler} is used")
            sampler = None
        if fields.get("RNG", "GPU") != "CPU":
            notes.append(
                f"noise: the PNG's came from the {fields.get('RNG', 'GPU')} (A1111's default); the studio "
                "draws it on the CPU, so the pixels differ"
            )
        unused = sorted(k for k in fields if k not in _READ_FIELDS)
        if unused:
            notes.append(f"fields not used: {', '.join(unused)}")
        ask = GenerateInput(
            brand=options.brand_slug,
            prompt=prompt,
            negative_prompt=negative,
            cfg=_number(fields, "CFG scale", float, notes),
            steps=_number(fields, "Steps", int, notes),
            seed=_number(fields, "Seed", int, notes),
            sampler=sampler,
            guidance=_plain_cfg(options),
        )
        width, height = _number(fields, "Size-1", int, notes), _number(fields, "Size-2", int, notes)
        size = (width, height) if width is not None and height is not None else None
        return self._fitted(options, ask, loras, size, notes, "a1111")

    @staticmethod
    def _fitted(
        options: GenerationOptions,
        ask: GenerateInput,
        loras: list[tuple[str, str]],
        size: tuple[int, int] | None,
        notes: list[str],
        source: str,
    ) -> PngSettings:
        """``ask`` with the LoRAs that the brand has (its others at 0) and a size it allows."""
        brand_loras = {name: name for name, _, _ in options.loras}
        folded = {name.lower(): name for name in brand_loras}
        weights = {name: 0.0 for name in brand_loras}
        for asked, weight_text in loras:
            name = brand_loras.get(asked) or folded.get(asked.lower())
            if name is None:
                have = ", ".join(brand_loras) or "none"
                notes.append(f"LoRA {asked!r} is not one of brand {options.brand_slug}'s (it has: {have})")
                continue
            try:
                weight = float(weight_text)
            except ValueError:
                notes.append(f"LoRA {asked!r}: weight {weight_text!r} is not a number; not used")
                continue
            if not MIN_LORA_WEIGHT <= weight <= MAX_LORA_WEIGHT:
                notes.append(f"LoRA {asked!r}: weight {weight:g} is outside 0-1.5; not used")
                continue
            weights[name] = weight
        ask = replace(ask, loras=weights)
        if size is not None:
            preset = next((n for n, w, h in options.sizes if (w, h) == size), None)
            if preset is not None:
                ask = replace(ask, size=preset)
            elif options.allow_custom_sizes:
                ask = replace(ask, width=size[0], height=size[1])
            else:
                fallback = options.default_size or "the model's default"
                notes.append(f"size {size[0]}x{size[1]} is not one of the brand's sizes; {fallback} is used")
        return PngSettings(source, ask, tuple(notes))


def with_overrides(request: GenerateInput, overrides: Mapping[str, Any]) -> GenerateInput:
    """``request`` with the given fields replaced (``None`` values ignored; ``loras`` merged; a size
    replaces the PNG's size, whichever way it is given)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    if "loras" in given:
        given["loras"] = {**request.loras, **given["loras"]}
    if "size" in given or "width" in given or "height" in given:
        request = replace(request, size=None, width=None, height=None)
    unknown = set(given) - set(GenerateInput.__dataclass_fields__)
    if unknown:
        raise ValidationError("overrides", f"unknown fields: {', '.join(sorted(unknown))}")
    return replace(request, **given)


def _plain_cfg(options: GenerationOptions) -> dict[str, Any] | None:
    """Plain CFG, as the PNG was made, where the brand's default guidance is something else (a FLUX model
    takes no guidance setting: None there)."""
    if options.default_guidance and options.model_family != "flux":
        return {"method": "cfg"}
    return None


def _needs_brand(brand: str | None, name: str) -> str:
    if not brand:
        raise ValidationError("brand", f"{name} is not an image of this studio: name the brand to use")
    return brand


def _model_note(options: GenerationOptions, model: str | None, model_hash: str | None) -> list[str]:
    """A note when the PNG's model is not the brand's (by name, or by the end of its path); both are named
    by :func:`~studio.services.brand_models.model_name`, never by a server path."""
    ours = options.base_model
    if model and (model == ours or model_name(model) == model_name(ours)):
        return []
    theirs = f"{model_name(model) or 'not named'}" + (f" (hash {model_hash})" if model_hash else "")
    return [f"model {theirs} is not the brand's; the brand's model {model_name(ours)} is used"]


def _number(fields: Mapping[str, str], key: str, kind: type, notes: list[str]) -> Any:
    """A field as ``kind`` (None when missing, or named in ``notes`` when it is not a number)."""
    value = fields.get(key)
    if value is None:
        return None
    try:
        number = float(value)
        return int(number) if kind is int and number.is_integer() else kind(number)
    except (TypeError, ValueError):
        notes.append(f"{key.rstrip('-12')} {value!r} is not a number; the brand's default is used")
        return None


def _png_text_and_pixels(path: str | Path) -> tuple[dict[str, str], str]:
    """The PNG's text chunks and the hash of its pixels (as the studio stores them for an image)."""
    file = Path(path)
    if not file.is_file():
        raise NotFoundError(f"{file}: no such file")
    try:
        with PILImage.open(file) as image:
            if image.format != "PNG":
                raise ValidationError("png", f"{file.name}: not a PNG image ({image.format})")
            image.load()
            text = {str(k): v for k, v in getattr(image, "text", {}).items() if isinstance(v, str)}
            return text, image_sha256(image)
    except (OSError, SyntaxError, ValueError, PILImage.DecompressionBombError) as exc:
        raise ValidationError("png", f"{file.name}: not a readable PNG image ({exc})") from None
