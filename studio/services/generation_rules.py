"""The brand's rules on what a request may ask for, before anything runs: the size (a preset, or a custom
size where allowed) and the banned terms. The caps per model family and the prompt lengths are in
:mod:`studio.services.generation_input` (they need no database).

Sizes: a request names one of the brand's presets (or gives its width and height). A ``WIDTHxHEIGHT``
outside them is accepted when an admin allows custom sizes for the brand (``brands.allow_custom_sizes``),
or when it is the size of an image of the brand the user may see: what a remix of that image asks for (it
was accepted when it was made). A regenerate uses its recipe's size and does not come here.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from studio.db.generation_models import Image
from studio.db.models import Brand
from studio.errors import ValidationError
from studio.services.banned_terms import banned_term_in
from studio.services.generation_input import GenerateInput
from studio.services.views import Actor
from studio.services.visibility import visibility_clause

#: a size that names no preset but a custom WIDTHxHEIGHT
CUSTOM_SIZE = re.compile(r"\s*(\d{1,5})\s*[x×]\s*(\d{1,5})\s*")


def refuse_banned(brand: Brand, prompt: str) -> None:
    """A ValidationError naming the prompt when it contains one of the brand's banned terms
    (:mod:`studio.services.banned_terms`)."""
    term = banned_term_in(prompt, brand.banned_terms)
    if term is not None:
        raise ValidationError("prompt", f"contains {term!r}, a term banned by brand {brand.slug}")


def requested_size(
    session: Session, actor: Actor, brand: Brand, request: GenerateInput
) -> tuple[int | None, int | None]:
    """The size asked for: a preset of the brand (by name, or its width and height), else a custom
    ``WIDTHxHEIGHT`` (or width and height) where :func:`custom_size_allowed`; no size: the brand's default
    preset (None, None without one: the model's default)."""
    presets = {p["name"]: p for p in brand.size_presets}
    known = ", ".join(presets) or "none"
    if request.size:
        preset = presets.get(request.size)
        if preset is not None:
            return int(preset["width"]), int(preset["height"])
        custom = CUSTOM_SIZE.fullmatch(request.size)
        if custom is None:
            more = "; or WIDTHxHEIGHT" if brand.allow_custom_sizes else ""
            raise ValidationError(
                "size", f"brand {brand.slug} has no size {request.size!r} (it has: {known}{more})"
            )
        width, height = int(custom.group(1)), int(custom.group(2))
    elif request.width is not None or request.height is not None:
        if request.width is None or request.height is None:
            raise ValidationError("size", "give both width and height")
        width, height = request.width, request.height
    else:
        preset = presets.get(brand.default_size or "")
        if preset is not None:
            return int(preset["width"]), int(preset["height"])
        return None, None
    if not custom_size_allowed(session, actor, brand, width, height):
        raise ValidationError(
            "size",
            f"{width}x{height} is not a size of brand {brand.slug} (it has: {known}); "
            "an admin can allow custom sizes for the brand",
        )
    return width, height


def custom_size_allowed(session: Session, actor: Actor, brand: Brand, width: Any, height: Any) -> bool:
    """Whether ``width`` × ``height`` may be asked for: one of the brand's presets, any size when an admin
    allows custom sizes for the brand, or the size of an image of the brand the actor may see."""
    if brand.allow_custom_sizes:
        return True
    if any((int(p["width"]), int(p["height"])) == (width, height) for p in brand.size_presets):
        return True
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (width, height)):
        return False
    query = select(Image.id).where(Image.brand_id == brand.id, Image.width == width, Image.height == height)
    clause = visibility_clause(session, actor)
    if clause is not None:
        query = query.where(clause)
    return session.scalar(query.limit(1)) is not None
