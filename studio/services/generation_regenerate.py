"""Regenerate: an image's stored recipe read back into a plan and the engine's request that makes the same
pixels again (same machine, same model files).

The recipe is the JSON stored with the generation (and in the PNG); the image's own seed replaces the
batch's first. The LoRA files are found again by their sha256, the control maps by the templates the
generation used. The brand's rules of today apply: the prompts' lengths and the banned terms (the caps of
the model's family are checked by the caller with the plan).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from studio.config import Settings
from studio.db.models import Brand, LoraVersion
from studio.services.generation_controls import ControlMaps
from studio.services.generation_input import prompt_problems
from studio.services.generation_plan import LoraUse, Plan, TemplateUse, stored_file
from studio.services.generation_rules import refuse_banned
from studio.services.permissions import require_role
from studio.services.views import Actor
from studio.services.visibility import visible_image

if TYPE_CHECKING:  # pragma: no cover
    from studio.engine.recipe import Recipe


def recipe_plan(
    session: Session, settings: Settings, controls: ControlMaps, actor: Actor, image_id: int
) -> tuple[Plan, Recipe]:
    """The plan (with the engine's request) and the recipe that make image ``image_id`` again, for ``actor``
    (who must see the image and be a marketer or an admin). A LoRA file or control map that is no longer
    there is a ValidationError naming it."""
    from studio.engine.recipe import Recipe
    from studio.engine.request import request_from_recipe

    image = visible_image(session, actor, image_id)
    user = require_role(session, actor, "marketer")
    generation = image.generation
    brand = session.get(Brand, image.brand_id)
    assert brand is not None
    for problem in prompt_problems(generation.prompt, generation.negative_prompt):
        raise problem
    refuse_banned(brand, generation.prompt)
    recipe = Recipe.from_dict({**generation.recipe, "seed": image.seed})
    lora_paths = lora_files(session, settings, recipe)
    control_images = controls.stored_maps(session, generation)
    templates = tuple(
        TemplateUse(
            template_id=t.template_id or 0,
            name=t.template_name,
            preprocessor="",
            source_path=None,
            control_path=None,
            scale=t.conditioning_scale,
            start=t.guidance_start,
            end=t.guidance_end,
        )
        for t in generation.templates
    )
    request = request_from_recipe(recipe, lora_paths, control_images)
    plan = Plan(
        user_id=user.id if user is not None else generation.user_id,
        brand_id=brand.id,
        brand_slug=brand.slug,
        palette=tuple(brand.palette),
        palette_threshold=brand.palette_threshold,
        prompt=generation.prompt,
        negative_prompt=generation.negative_prompt,
        request=request,
        loras=tuple(
            LoraUse(
                adapter=lora.adapter_name,
                version_id=lora.lora_version_id or 0,
                sha256=lora.sha256,
                path=Path(lora_paths.get(lora.sha256, "")),
                weight=lora.weight,
                trigger_words=(),
            )
            for lora in generation.loras
        ),
        templates=templates,
    )
    return plan, recipe


def lora_files(session: Session, settings: Settings, recipe: Recipe) -> dict[str, str | Path]:
    """The LoRA files of ``recipe`` that are still stored: sha256 → file."""
    paths: dict[str, str | Path] = {}
    for entry in recipe.loras:
        for version in session.scalars(select(LoraVersion).where(LoraVersion.sha256 == entry.sha256)):
            path = stored_file(settings, version.file_path)
            if path is not None and path.is_file():
                paths[entry.sha256] = path
                break
    return paths
