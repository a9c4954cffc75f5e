"""An edit made again from its recipe alone (``studio regenerate FILE.png`` of an edited studio PNG whose
image this studio no longer has, or never had): the plan for a brand, and the refusal when the edit's source
or mask is not in the studio's content-addressed store (:mod:`studio.services.editing_files`).

The recipe names the source and the mask by sha256; with both stored, the edit runs again exactly as
recorded (same pixels on the same machine) and is saved as a new image of the brand. Without them the edit
cannot be made, and nothing else is made in its place: a text-to-image of the recipe's prompt would be a
different picture.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from studio.config import Settings
from studio.db.models import LoraVersion
from studio.engine.recipe import Recipe
from studio.engine.request import request_from_recipe
from studio.errors import ValidationError
from studio.services.editing_files import EditFiles
from studio.services.generation_input import prompt_problems
from studio.services.generation_plan import LoraUse, Plan, author_id
from studio.services.generation_regenerate import lora_files
from studio.services.generation_rules import refuse_banned
from studio.services.permissions import readable_brand, require_role
from studio.services.views import Actor


def require_stored_inputs(recipe: Recipe, files: EditFiles, name: str) -> None:
    """Refuse (ValidationError naming ``source`` or ``mask``) unless the edit's source and mask are stored."""
    entry = recipe.edit
    if entry is None:
        raise ValidationError("recipe", f"{name} was not made by an edit")
    if not files.path("sources", entry.source_sha256).is_file():
        raise ValidationError(
            "source",
            f"{name} is an edit ({entry.kind}) of a source image that is not in this studio's store "
            f"(sha256 {entry.source_sha256[:12]}…): the source image is needed to make it again. Edit the "
            "source image itself (studio edit FILE --kind …) instead",
        )
    if entry.mask_sha256 and not files.path("masks", entry.mask_sha256).is_file():
        raise ValidationError(
            "mask",
            f"{name} is an inpainting whose painted mask is not in this studio's store (sha256 "
            f"{entry.mask_sha256[:12]}…): the source image and its mask are needed to make it again",
        )


def brand_recipe_plan(
    session: Session, settings: Settings, actor: Actor, recipe: Recipe, brand_slug: str, name: str
) -> Plan:
    """The plan that runs ``recipe``'s edit again as a new image of ``brand_slug`` for ``actor`` (a marketer
    or admin who may read the brand). The brand's rules of today apply (prompt lengths, banned terms; the
    caller checks the family's caps); a LoRA of the recipe that is not stored, or a ControlNet unit (its
    map is stored with the generation, not by the recipe), is refused naming it."""
    user = require_role(session, actor, "marketer")
    brand, _ = readable_brand(session, actor, brand_slug)
    typed = recipe.prompt_typed or recipe.prompt
    for problem in prompt_problems(typed, recipe.negative_prompt):
        raise problem
    refuse_banned(brand, typed)
    refuse_banned(brand, recipe.prompt)
    if recipe.controls:
        raise ValidationError(
            "templates",
            f"{name} was edited with {len(recipe.controls)} ControlNet template(s) whose maps are stored "
            "with the original image only; regenerate that image by its id",
        )
    paths = lora_files(session, settings, recipe)
    loras = []
    for entry in recipe.loras:
        if entry.sha256 not in paths:
            raise ValidationError("loras", f"LoRA {entry.name!r} ({entry.sha256[:12]}…) is not stored here")
        version = session.scalar(select(LoraVersion.id).where(LoraVersion.sha256 == entry.sha256).limit(1))
        loras.append(
            LoraUse(entry.name, int(version or 0), entry.sha256, Path(paths[entry.sha256]), entry.weight, ())
        )
    return Plan(
        user_id=author_id(session, user),
        brand_id=brand.id,
        brand_slug=brand.slug,
        palette=tuple(brand.palette),
        palette_threshold=brand.palette_threshold,
        prompt=typed,
        negative_prompt=recipe.negative_prompt,
        request=request_from_recipe(recipe, paths),
        loras=tuple(loras),
        templates=(),
    )
