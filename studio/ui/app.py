"""The app shell: tabs by role, the header, and how the Blocks are launched behind the studio's login."""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import anyio
import gradio as gr
from starlette.middleware import Middleware

from studio.config import Settings
from studio.services.container import Services
from studio.services.users import StudioOverview
from studio.ui import account, brands_tab, gallery_tab, generate_tab, review_tab, training_tab, users_tab
from studio.ui.cached_files import CachedFiles, CachedLinks
from studio.ui.common import actor_of, shown_to_user
from studio.ui.file_access import StudioFiles
from studio.ui.http_guards import OriginGuard, QueueOwners
from studio.ui.login_page import LoginPageScript, studio_login
from studio.ui.sessions import SessionGuard
from studio.ui.upload_guard import UploadQuota

CSS = """
.swatch { display:flex; flex-direction:column; align-items:center; gap:2px; font-size:11px }
#studio-header { align-items: center }
#studio-notice p { margin: 0 }
.recipe-diff td, .recipe-diff th { padding: 2px 8px; text-align: left; vertical-align: top }
"""


@dataclass(frozen=True)
class TabSpec:
    """A tab, the module that renders it, and the roles that see it (the services enforce the same)."""

    title: str
    module: ModuleType
    roles: frozenset[str]


TABS: tuple[TabSpec, ...] = (
    TabSpec("Generate", generate_tab, frozenset({"marketer", "admin"})),
    TabSpec("Review", review_tab, frozenset({"reviewer", "admin"})),
    TabSpec("Gallery", gallery_tab, frozenset({"marketer", "reviewer", "admin"})),
    TabSpec("Brands", brands_tab, frozenset({"marketer", "reviewer", "admin"})),
    TabSpec("Users", users_tab, frozenset({"admin"})),
    TabSpec("Training", training_tab, frozenset({"admin"})),
)


def tab_roles(spec: TabSpec, settings: Settings) -> frozenset[str]:
    """The roles that see ``spec``'s tab: reviewers also see Generate (its edit mode; not its text-to-image
    form, which the tab shows by role) where reviewers may edit (STUDIO_REVIEWERS_MAY_EDIT)."""
    if spec.module is generate_tab and settings.reviewers_may_edit:
        return spec.roles | {"reviewer"}
    return spec.roles


def landing_tab(roles: set[str]) -> str | None:
    """The tab a user opens on: admins on Brands, reviewers on Review, marketers on Generate."""
    for role, title in (("admin", "Brands"), ("reviewer", "Review"), ("marketer", "Generate")):
        if role in roles:
            return title
    return None


def next_step(overview: StudioOverview) -> str:
    """The one line under the header that says what to do next, or "" when nothing is missing."""
    me, roles = overview.me, set(overview.me.roles)
    if not roles:
        return "Your account has no role yet: ask an admin to give you one (**Users → Set roles**)."
    if "admin" in roles:
        if not overview.brand_count:
            return (
                "Welcome to Brand Studio. There is no brand yet: create one in **Brands → Create or edit a "
                "brand**, or import the demo brands with `studio brands sync brands/`."
            )
        if overview.user_count == 1:
            return (
                f"Welcome to Brand Studio: {overview.brand_count} brand(s) are ready "
                f"({', '.join(me.brands) or 'none of them yours yet'}). Next: try one in **Generate**, add "
                "your team in **Users**, then give them brands in **Brands → Members**."
            )
        if not me.brands:
            return "You are a member of no brand, so Generate has none: add yourself in **Brands → Members**."
        return ""
    if not me.brands:
        return "You have no brand yet: ask an admin to add you to one (**Brands → Members**)."
    return ""


def build_ui(services: Services) -> gr.Blocks:
    """All tabs, hidden until the login tells who is looking (hiding is convenience, not security)."""
    with gr.Blocks(title="Brand Studio") as demo:
        with gr.Row(elem_id="studio-header"):
            gr.Markdown("## Brand Studio")
            whoami = gr.Markdown()
            gr.Button("Log out", link="/logout", size="sm", scale=0)
        account.render(services)  # change my password (any signed-in user, with the current one)
        notice = gr.Markdown(elem_id="studio-notice", visible=False)
        tabs: list[gr.Tab] = []
        parts: dict[str, dict[str, Any]] = {}
        with gr.Tabs() as tab_set:
            for spec in TABS:
                with gr.Tab(spec.title, id=spec.title, visible=False) as tab:
                    parts[spec.title] = spec.module.render(services) or {}
                tabs.append(tab)
        for part in list(parts.values()):  # events across tabs (the Gallery's Remix fills Generate)
            if "connect" in part:
                part["connect"](parts, tab_set)
        admin_only = [c for p in parts.values() for c in p.get("admin_only", [])]
        by_role = [shown for p in parts.values() for shown in p.get("shown_by_role", [])]  # (component, rule)
        seen_by = [tab_roles(spec, services.settings) for spec in TABS]

        def on_load(request: gr.Request) -> list[Any]:
            with shown_to_user():
                overview = services.users.overview(actor_of(request))
            me = overview.me
            roles = set(me.roles)
            greeting = f"Signed in as **{html.escape(me.username)}** ({', '.join(me.roles) or 'no role'})"
            line = next_step(overview)
            landing = landing_tab(roles)
            return [
                greeting,
                gr.update(value=line, visible=bool(line)),
                gr.update(selected=landing) if landing else gr.skip(),
                *(gr.update(visible=bool(roles & seen)) for seen in seen_by),
                *(gr.update(visible="admin" in roles) for _ in admin_only),
                *(gr.update(visible=rule(roles)) for _, rule in by_role),
            ]

        shown = [component for component, _ in by_role]
        load = demo.load(
            on_load, None, [whoami, notice, tab_set, *tabs, *admin_only, *shown], api_visibility="private"
        )
        admins = frozenset({"admin"})
        for spec, tab in zip(TABS, tabs, strict=True):
            listing = parts[spec.title].get("on_load")
            if listing and spec.roles == admins:
                tab.select(**listing, api_visibility="private")
            elif listing:
                load.success(**for_viewers(services, spec.roles, listing), api_visibility="private")
            on_select = parts[spec.title].get("on_select")  # a listing that goes stale: fresh on every visit
            if on_select:
                tab.select(**on_select, api_visibility="private")
            for_admins = parts[spec.title].get("admin_listing")  # admin-only parts of a shared tab
            if for_admins:
                load.success(**for_viewers(services, admins, for_admins), api_visibility="private")
                tab.select(**for_viewers(services, admins, for_admins), api_visibility="private")
    return demo


def for_viewers(services: Services, roles: frozenset[str], listing: dict[str, Any]) -> dict[str, Any]:
    """A tab's login-time listing (no inputs) that runs only for users who see the tab: for others it changes
    nothing, so no refused call (a reviewer's Generate options, a marketer's review queue) shows an error.
    The handler keeps its name (the permission table knows endpoints by it)."""
    fn, outputs = listing["fn"], listing["outputs"]
    count = len(outputs) if isinstance(outputs, list | tuple) else 1

    def run(request: gr.Request) -> Any:
        with shown_to_user():
            held = frozenset(services.users.whoami(actor_of(request)).roles)
        if held & roles:
            return fn(request)
        return gr.skip() if count == 1 else tuple(gr.skip() for _ in range(count))

    run.__name__ = run.__qualname__ = fn.__name__
    return {**listing, "fn": run}


def login_off_the_event_loop(check: Callable[[str, str], bool]) -> Callable[[str, str], Awaitable[bool]]:
    """Gradio awaits an async ``auth=`` but calls a sync one on its event loop: a password hash (~0.1-1 s
    of CPU) there stalls every other request, and many logins at once time out. Run it in a thread."""

    async def login(username: str, password: str) -> bool:
        return await anyio.to_thread.run_sync(check, username, password)

    login.check = check  # type: ignore[attr-defined]  # the sync check, for tests
    return login


def launch_options(services: Services) -> dict[str, Any]:
    """Arguments for ``Blocks.launch``: the studio's own login, local bind, no data folder served by Gradio
    (studio files go through :mod:`studio.ui.file_access`) and the HTTP guards of :mod:`studio.ui.http_guards`
    and :mod:`studio.ui.upload_guard`."""
    settings = services.settings
    cached = CachedFiles()  # Gradio's cached files, each named by a link bound to one user
    return {
        "server_name": settings.host,
        "server_port": settings.port,
        "auth": login_off_the_event_loop(studio_login(services.users)),
        "auth_message": "Brand Studio: sign in with the account your admin gave you.",
        "share": False,
        "allowed_paths": [],
        "max_file_size": f"{settings.max_upload_mb}mb",
        "footer_links": ["gradio"],
        "css": CSS,
        "head": review_tab.KEYBOARD_HEAD,  # approve / reject / next from the keyboard
        "theme": gr.themes.Soft(),
        "show_error": False,  # only the studio's own messages (gr.Error) reach a user; others are logged
        "app_kwargs": {
            "middleware": [
                Middleware(OriginGuard),  # another site's requests: refused first
                Middleware(SessionGuard, users=services.users),  # sign-ins; ended sessions are logged out
                Middleware(LoginPageScript),  # a lockout's reason on the login page
                Middleware(StudioFiles, files=services.files, cached=cached),
                Middleware(QueueOwners),
                Middleware(CachedLinks, cached=cached),  # no upload answer or event shows a cached path
                Middleware(UploadQuota, quota_mb=settings.upload_quota_mb),
            ]
        },
    }
