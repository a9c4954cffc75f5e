"""How long user text may be: every length limit on text a user types, in one place.

Text over its limit is refused with a :class:`~studio.errors.ValidationError` that names the field and the
limit, before anything is written. The numbers are generous for real use (a review comment of a few
paragraphs, a brand description of a page) and stop text that is only there to fill the database or every
page that shows it. Limits on prompts and user names live with their own checks.
"""

from __future__ import annotations

from collections.abc import Sized
from typing import Any

from studio.errors import ValidationError

#: a review comment (approve, reject) or a reopen reason
REVIEW_COMMENT = 2_000
#: a training image's caption
CAPTION = 1_000
#: a dataset's name
DATASET_NAME = 100

#: brand fields (brand.toml, the brand form)
BRAND_NAME = 200
BRAND_DESCRIPTION = 5_000
BRAND_TEMPLATE = 2_000  # the style template and the default negative prompt
BRAND_MODEL = 300
#: one item of a list (a banned term, a trigger word), and how many items a list may hold
LIST_ITEM = 200
BANNED_TERMS = 500
TRIGGER_WORDS = 32
#: size presets, LoRAs and layout templates of one brand file
BRAND_SIZES = 32
BRAND_LORAS = 64
BRAND_TEMPLATES = 64

#: the gallery's filters (text search, author, brand, dates, sort)
FILTER_TEXT = 500
FILTER_NAME = 100
FILTER_DATE = 40


def check_length(field: str, value: str, limit: int) -> str:
    """``value`` unchanged, or a ValidationError naming ``field`` when it is longer than ``limit``."""
    if len(value) > limit:
        raise ValidationError(field, f"is {len(value):,} characters long; at most {limit:,} are allowed")
    return value


def check_count(field: str, items: Sized, limit: int) -> Any:
    """``items`` unchanged, or a ValidationError naming ``field`` when it holds more than ``limit`` items."""
    if len(items) > limit:
        raise ValidationError(field, f"has {len(items):,} items; at most {limit:,} are allowed")
    return items
