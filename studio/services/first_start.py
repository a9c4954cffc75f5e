"""The first start: an admin account, and on an empty data folder the demo brands, granted to that admin,
so that the first sign-in lands in a studio that can generate (``STUDIO_DEMO_BRANDS=0`` leaves them out)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.errors import StudioError
from studio.services.brands import BrandService
from studio.services.users import UserService
from studio.services.views import SYSTEM, AdminBootstrap

#: The demo brands that ship with the studio (a source checkout's ``brands/`` folder).
DEMO_BRANDS_DIR = Path(__file__).resolve().parents[2] / "brands"


@dataclass(frozen=True)
class FirstStart:
    """What the start did: the admin bootstrap, the demo brands imported (and granted), and a note saying
    why none were imported when that is worth telling (an error, a missing folder)."""

    admin: AdminBootstrap
    demo_brands: tuple[str, ...] = ()
    note: str = ""


def first_start(
    users: UserService, brands: BrandService, *, demo_brands: bool, demo_dir: Path = DEMO_BRANDS_DIR
) -> FirstStart:
    """Make the first admin if there is none; when that happened on an empty studio (no brand yet) and
    ``demo_brands`` is on, import the brands in ``demo_dir`` and make the admin a member of each.

    A studio that already has brands or other users (an admin restored there) is left as it is. A demo
    folder that is missing or does not import is reported in ``note``; the studio starts anyway."""
    admin = users.ensure_admin()
    if not (admin.created and admin.username and demo_brands):
        return FirstStart(admin)
    if brands.list_brands(SYSTEM) or len(users.list_users(SYSTEM)) > 1:  # not an empty studio
        return FirstStart(admin)
    if not demo_dir.is_dir():
        return FirstStart(admin, note=f"no demo brands: {demo_dir} is not a folder")
    try:
        report = brands.sync(SYSTEM, demo_dir)
        slugs = tuple(result.slug for result in report.results)
        for slug in slugs:
            brands.grant(SYSTEM, slug, admin.username)
    except StudioError as error:
        return FirstStart(admin, note=f"the demo brands were not imported: {error}")
    return FirstStart(admin, demo_brands=slugs)
