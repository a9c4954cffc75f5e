"""No response shows a server path, and the links that replace them follow who may see the file (issue 16,
item 4), against the real ``python app.py`` on 127.0.0.1 over a real SQLite file.

Gradio copies every file or PIL image a handler returns into its cache (``<STUDIO_HOME>/cache/gradio``) and
sends the cached path; its upload route answers with one. A marketer and an admin walk through what they
get: the page's config, the Generate tab's template thumbnails after picking a brand, a PNG dropped on
"Settings from a PNG", the control-map preview and a saved template, the dataset thumbnails and the uploads
these take. Every answer, API response and event of the stream is checked for the data folder's path and
``/cache/gradio/``; each link shown is fetched by its viewer (200), by a marketer of another brand, a
marketer of no brand and a caller with no login (404), and after a revoke.

The data folder is :mod:`security_setup`'s (brand acme: mia marketer member, olga marketer of no brand; a
layout template ``frame``, a dataset ``faces``) plus gus, a marketer of another brand (globex).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from engine_fixtures import controlnet_dir, fast_cpu, lora_files, sd1_dir  # noqa: F401
from gradio_http import GradioSession
from integration.security_setup import ADMIN_PASSWORD, BRAND, PASSWORDS, make_model_dir, png_bytes, populate
from live_server import LiveApp, start_app
from PIL import Image, PngImagePlugin

from studio.services.views import SYSTEM

GUS_PASSWORD = "gus-security-pass"
FILE_META = {"_type": "gradio.FileData"}


@dataclass
class Live:
    app: LiveApp
    dataset_id: int
    model_dir: Path  # acme's base model: a local folder outside the data folder

    @property
    def home(self) -> Path:
        return self.app.home


def studio_services(home: Path) -> Any:
    """Services over the app's data folder (the app keeps running on the same database)."""
    from argon2 import PasswordHasher, profiles

    from studio.config import Settings
    from studio.services.container import build_services

    settings = Settings.from_env({"STUDIO_HOME": str(home)})
    return build_services(
        settings, migrate=False, password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST)
    )


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory,
    sd1_dir: Path,  # noqa: F811
    controlnet_dir: Path,  # noqa: F811
    lora_files: dict[str, Path],  # noqa: F811
) -> Iterator[Live]:
    from studio.services.brand_files import BrandSpec

    root = tmp_path_factory.mktemp("paths")
    home = root / "home"
    home.mkdir()
    model_dir = make_model_dir(root, sd1_dir, controlnet_dir)
    populate(home, model_dir, lora_files["a"])
    services = studio_services(home)
    try:
        spec = BrandSpec("globex", "Globex", ("#0000ff",), "{prompt}", base_model=str(model_dir))
        services.brands.create_brand(SYSTEM, spec)
        services.users.add_user(SYSTEM, "gus", ["marketer"], GUS_PASSWORD)
        services.brands.grant(SYSTEM, "globex", "gus")
        dataset_id = services.datasets.list_datasets(SYSTEM, BRAND)[0].id
    finally:
        services.close()
    app = start_app(home, admin_password=ADMIN_PASSWORD, argv=["--no-worker"])
    try:
        yield Live(app=app, dataset_id=dataset_id, model_dir=model_dir)
    finally:
        app.stop()


def password_of(user: str) -> str:
    return {"admin": ADMIN_PASSWORD, "gus": GUS_PASSWORD}.get(user) or PASSWORDS[user]


def session(live: Live, user: str) -> GradioSession:
    page = GradioSession(live.app.url, timeout=90)
    assert page.login(user, password_of(user)).status_code == 200, user
    return page


@dataclass
class Seen:
    """Every response body one user got, and the file links they held."""

    live: Live
    bodies: list[tuple[str, str]] = field(default_factory=list)

    def record(self, what: str, text: str) -> None:
        self.bodies.append((what, text))

    def leaks(self) -> list[str]:
        """The responses that name the data folder or Gradio's cache."""
        home = str(self.live.home)
        return [what for what, text in self.bodies if home in text or "/cache/gradio/" in text]


def config(page: GradioSession, seen: Seen) -> dict[str, Any]:
    answer = page.http.get("/config")
    assert answer.status_code == 200
    seen.record("config", answer.text)
    return answer.json()


def run(page: GradioSession, seen: Seen, api_name: str, data: list[Any]) -> list[Any]:
    """Run the endpoint ``api_name`` as the page does; every message of its stream is recorded."""
    deps = [d for d in config(page, seen)["dependencies"] if d.get("api_name") == api_name]
    assert len(deps) == 1, api_name
    outcome = page.call(
        deps[0]["id"], data, on_message=lambda message: seen.record(api_name, json.dumps(message))
    )
    assert outcome.ok, f"{api_name}: {outcome.error}"
    return outcome.data or []


def upload(page: GradioSession, seen: Seen, name: str, content: bytes) -> str:
    """Upload one file as the page does; the answer's entry (what the page sends back as the file's path)."""
    answer = page.http.post("/gradio_api/upload", files={"files": (name, content)})
    assert answer.status_code == 200, answer.text
    seen.record(f"upload {name}", answer.text)
    (entry,) = answer.json()
    return entry


def as_file(entry: str, name: str) -> dict[str, Any]:
    """The FileData the page sends for an uploaded file."""
    return {"path": entry, "url": None, "orig_name": name, "meta": FILE_META}


def links_in(value: Any) -> list[str]:
    """The ``url`` of every file in a component value (Gallery items, Image values, updates)."""
    found: list[str] = []

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            if isinstance(item.get("url"), str) and isinstance(item.get("path"), str):
                found.append(item["url"])
            for inner in item.values():
                walk(inner)
        elif isinstance(item, list | tuple):
            for inner in item:
                walk(inner)

    walk(value)
    return found


def status_for(live: Live, user: str | None, url: str) -> int:
    """What fetching ``url`` (a link as shown, made relative to the app) answers ``user``."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    if user is None:
        with httpx.Client(base_url=live.app.url, timeout=30) as anonymous:
            return anonymous.get(path).status_code
    with session(live, user) as page:
        answer = page.http.get(path)
        if answer.status_code == 200:
            assert answer.content[:4] == b"\x89PNG", url
        return answer.status_code


def a1111_png() -> bytes:
    """A PNG with A1111 parameters, as another tool writes them."""
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a red circle\nSteps: 2, Sampler: Euler, CFG scale: 5, Seed: 3, Size: 32x32")
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), "red").save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def assert_links_for(
    live: Live, links: list[str], *, allowed: tuple[str, ...], refused: tuple[str | None, ...]
) -> None:
    """Each link is served to ``allowed`` (200, a PNG) and to nobody in ``refused`` (404)."""
    for link in links:
        assert "/studio/files/" in link, link
        for user in allowed:
            assert status_for(live, user, link) == 200, (user, link)
        for user in refused:
            assert status_for(live, user, link) == 404, (user, link)


# ---------------------------------------------------------------------------------------------- tests


def test_a_marketer_sees_no_server_path_and_template_links_follow_membership(live: Live) -> None:
    seen = Seen(live)
    with session(live, "mia") as mia:
        picked = run(mia, seen, "brand_changed", [BRAND, None])
        thumbs = links_in(picked[6])  # the Templates gallery
        assert len(thumbs) == 1, picked[6]
        dropped = upload(mia, seen, "a1111.png", a1111_png())
        # the page shows an uploaded file through the link it builds from the answer
        assert mia.http.get(f"/gradio_api/file={dropped}").status_code == 200
        filled = run(mia, seen, "settings_from_png", [as_file(dropped, "a1111.png"), BRAND])
        assert "a1111.png" in json.dumps(filled[0])  # the note names the dropped file
        assert len(links_in(filled)) == 1  # the form filled for the brand shows its template too
        thumbs += links_in(filled)
    assert seen.leaks() == [], seen.leaks()
    assert_links_for(live, thumbs, allowed=("mia", "admin"), refused=("gus", "olga", None))
    with session(live, "gus") as gus:
        refused = gus.http.get(f"/gradio_api/file={dropped}")
        assert refused.status_code in (403, 404) and refused.content[:4] != b"\x89PNG"
        # gus names mia's upload as his own file: it is not handed to the handler
        answer = gus.call_named("settings_from_png", {"Settings from a PNG": as_file(dropped, "a1111.png")})
        assert not answer.ok and "a1111" not in answer.error
    services = studio_services(live.home)
    try:  # the link follows the database: a revoked member no longer gets the file
        services.brands.revoke(SYSTEM, BRAND, "mia")
        assert status_for(live, "mia", thumbs[0]) == 404
    finally:
        services.brands.grant(SYSTEM, BRAND, "mia")
        services.close()
    assert status_for(live, "mia", thumbs[0]) == 200


def test_an_admin_sees_no_server_path_in_previews_templates_and_datasets(live: Live) -> None:
    seen = Seen(live)
    with session(live, "admin") as admin:
        layout = upload(admin, seen, "layout.png", png_bytes(size=96))
        assert admin.http.get(f"/gradio_api/file={layout}").status_code == 200
        preview = run(admin, seen, "preview_template", [BRAND, as_file(layout, "layout.png"), "canny"])
        previews = links_in(preview[0])
        assert len(previews) == 1, preview[0]
        saved = run(
            admin,
            seen,
            "create_template",
            [BRAND, as_file(layout, "layout.png"), "canny", "boxes", 1.0, 0.0, 1.0, ""],
        )
        control_maps = links_in(saved[1])
        assert len(control_maps) == 1, saved[1]
        shown = run(admin, seen, "thumbnails", [live.dataset_id])
        dataset_thumbs = links_in(shown[0])
        assert len(dataset_thumbs) == 1, shown[0]
        config(admin, seen)
    assert seen.leaks() == [], seen.leaks()
    assert_links_for(live, previews, allowed=("admin",), refused=("mia", "gus", None))
    assert_links_for(live, control_maps, allowed=("admin", "mia"), refused=("gus", "olga", None))
    assert_links_for(live, dataset_thumbs, allowed=("admin",), refused=("mia", "gus", None))


def test_no_upload_answer_names_the_cache(live: Live) -> None:
    seen = Seen(live)
    with session(live, "gus") as gus:
        answer = gus.http.post(
            "/gradio_api/upload", files=[("files", ("a.png", png_bytes())), ("files", ("b.txt", b"notes"))]
        )
        assert answer.status_code == 200
        seen.record("upload", answer.text)
        assert len(answer.json()) == 2
    assert seen.leaks() == []


#: Gradio's file routes, each naming a file by its server path (``{}``); ``%`` marks a path sent escaped
GRADIO_FILE_ROUTES = (
    "/gradio_api/file={}",
    "/gradio_api/file=%{}",
    "/gradio_api/file/{}",
    "/file={}",
    "/gradio_api//file={}",
    "/gradio_api/proxy={}",
)


def test_gradio_file_routes_serve_no_file_by_its_path(live: Live) -> None:
    """A cached upload (even to its uploader, who holds its link), a data file and the database: 404 on
    every Gradio file route, to the uploader, an admin and gus; the uploader's link still serves it."""
    with session(live, "mia") as mia:
        entry = upload(mia, Seen(live), "by-path.png", png_bytes(colour="green"))
        assert mia.http.get(f"/gradio_api/file={entry}").status_code == 200  # as the page shows it
    (cached,) = (live.home / "cache" / "gradio").rglob("by-path.png")
    data_files = [cached, live.home / "studio.db", *sorted((live.home / "templates").rglob("*.png"))[:1]]
    for user in ("mia", "admin", "gus"):
        with session(live, user) as page:
            for target in data_files:
                for route in GRADIO_FILE_ROUTES:
                    path = quote(str(target), safe="") if route.endswith("%{}") else str(target)
                    url = route.replace("%{}", "{}").format(path)
                    answer = page.http.get(url)
                    assert answer.status_code == 404, (user, url, answer.status_code)
                    assert str(live.home) not in answer.text, (user, url)
                assert page.http.head(f"/gradio_api/file={target}").status_code == 404, (user, target)


def test_dataset_thumbnails_are_small_pngs_for_admins_only(live: Live, tmp_path: Path) -> None:
    """The Training tab's grid shows each dataset image as a 128 px PNG made once under cache/thumbnails
    (keyed by the image's content hash), through the dataset link's admin-only check."""
    picture = tmp_path / "wide.png"
    Image.new("RGB", (640, 480), "orange").save(picture)
    services = studio_services(live.home)
    try:
        dataset = services.datasets.create_dataset(SYSTEM, BRAND, "wide")
        stored = services.datasets.add_images(SYSTEM, dataset.id, [(picture, "wide.png")]).dataset.images[0]
    finally:
        services.close()
    seen = Seen(live)
    with session(live, "admin") as admin:
        (link,) = links_in(run(admin, seen, "thumbnails", [dataset.id])[0])
        answer = admin.http.get(urlsplit(link).path)
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png", link
        with Image.open(io.BytesIO(answer.content)) as small:
            assert (small.format, small.size) == ("PNG", (128, 96)), link
        assert len(answer.content) < picture.stat().st_size
        full = admin.http.get(f"/studio/files/dataset/{dataset.id}/{stored.id}/wide.png")
        assert full.status_code == 200 and Image.open(io.BytesIO(full.content)).size == (640, 480)
    assert seen.leaks() == []
    (kept,) = (live.home / "cache" / "thumbnails").rglob(f"*{stored.sha256}*")
    assert kept.name == f"{stored.sha256}-128.png"
    made = kept.stat().st_mtime_ns
    assert_links_for(live, [link], allowed=("admin",), refused=("mia", "gus", None))
    assert kept.stat().st_mtime_ns == made  # made once, served from the cache after
    assert not [p for p in kept.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_marketer_sees_the_brand_model_by_name_not_its_folder(live: Live) -> None:
    """The Generate tab's model note, "Settings from a PNG", /brands_api and the Brands tab name acme's
    local base model by its folder's name; no answer shows the folder's server path."""
    seen = Seen(live)
    name = live.model_dir.name
    with session(live, "mia") as mia:
        picked = run(mia, seen, "brand_changed", [BRAND, None])
        assert f"<code>{name}</code>" in json.dumps(picked)  # the model note
        dropped = upload(mia, seen, "other-model.png", a1111_png())
        filled = run(mia, seen, "settings_from_png", [as_file(dropped, "other-model.png"), BRAND])
        assert f"the brand's model {name} is used" in json.dumps(filled[0])
        listed = mia.call_named("brands_api", {})
        assert listed.ok, listed.error
        seen.record("brands_api", json.dumps(listed.data))
        assert [b["model"] for b in listed.data[0] if b["slug"] == BRAND] == [name]
        rows = run(mia, seen, "list_rows", [])
        assert f"{name} (pinned)" in json.dumps(rows[0])
        details = run(mia, seen, "get_brand", [BRAND])
        assert f"<code>{name}</code>" in json.dumps(details)
    shown = [what for what, text in seen.bodies if str(live.model_dir) in text]
    assert shown == [], shown


# -------------------------------------------------------------------------------------------- browser


def _loaded(image: Any) -> bool:
    """Whether an <img> finished loading a picture (its link was served)."""
    return bool(image.evaluate("img => img.complete && img.naturalWidth > 0"))


def _block(page: Any, label: str) -> Any:
    blocks = page.locator("div.block").filter(has=page.get_by_text(label, exact=True))
    return blocks.filter(visible=True).last


def _watch(page: Any, live: Live, refused: list[str]) -> None:
    """Note each request of the page for a Gradio file route that is not a studio link, and each of its own
    requests that is refused (a script, a style, a font, the favicon... the page needs)."""
    from studio.ui.file_access import gradio_file_target, link_path

    def on_request(request: Any) -> None:
        path = urlsplit(request.url).path
        if gradio_file_target(path) is not None and link_path(path) is None:
            refused.append(f"by path: {request.url}")

    def on_response(response: Any) -> None:
        if response.url.startswith(live.app.url) and response.status in (403, 404):
            refused.append(f"{response.status}: {response.url}")

    page.on("request", on_request)
    page.on("response", on_response)


def _browser_login(browser: Any, live: Live, user: str, refused: list[str] | None = None) -> Any:
    page = browser.new_context(viewport={"width": 1366, "height": 900}).new_page()
    if refused is not None:
        _watch(page, live, refused)
    page.goto(live.app.url + "/")
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(password_of(user))
    page.get_by_role("button", name="Login", exact=True).click()
    page.get_by_text(f"Signed in as {user}").wait_for(timeout=60_000)
    return page


def _no_path_in(page: Any, live: Live, where: str) -> None:
    html = page.content()
    sources = page.evaluate("[...document.images].map(img => img.src).join(' ')")
    for text in (html, sources):
        assert str(live.home) not in text and "/cache/gradio/" not in text, where


@pytest.mark.e2e
def test_a_browser_shows_links_tiles_uploads_and_previews(live: Live, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright
    from support.chromium import CHROMIUM, CHROMIUM_ARGS

    dropped = tmp_path / "a1111.png"
    dropped.write_bytes(a1111_png())
    layout = tmp_path / "layout.png"
    layout.write_bytes(png_bytes(size=96))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            refused: list[str] = []  # nothing the page loads goes through a Gradio file route by path
            mia = _browser_login(browser, live, "mia", refused)  # the Generate tab, acme picked
            tile = mia.locator("#gen-templates img").first
            tile.wait_for(timeout=60_000)
            mia.wait_for_function("img => img.complete", arg=tile.element_handle(), timeout=30_000)
            assert _loaded(tile), "the template tile's link was not served"
            mia.locator("#gen-png-drop input[type=file]").set_input_files(str(dropped))
            mia.locator("#gen-png-note").get_by_text("Settings from a1111.png").wait_for(timeout=60_000)
            _no_path_in(mia, live, "the Generate tab")

            admin = _browser_login(browser, live, "admin", refused)
            admin.get_by_role("tab", name="Brands").click()
            admin.get_by_text("Layout template from an image (admin)").click()
            uploaded = _block(admin, "Layout image")
            uploaded.locator("input[type=file]").set_input_files(str(layout))
            shown = uploaded.locator("img").first
            shown.wait_for(timeout=60_000)
            admin.wait_for_function("img => img.complete", arg=shown.element_handle(), timeout=30_000)
            assert _loaded(shown), "the uploaded layout image is not shown"
            picker = admin.get_by_label(re.compile(r"^Brand")).filter(visible=True).first
            picker.click()
            admin.get_by_role("option", name=BRAND, exact=True).click()
            admin.get_by_role("button", name="Preview control map", exact=True).filter(visible=True).click()
            preview = _block(admin, "Control map (preview)").locator("img").first
            preview.wait_for(timeout=60_000)
            admin.wait_for_function("img => img.complete", arg=preview.element_handle(), timeout=30_000)
            assert _loaded(preview), "the control-map preview is not shown"
            _no_path_in(admin, live, "the Brands tab")
            admin.get_by_role("tab", name="Training").click()
            # (the empty jobs list names the same section in bold: the accordion's label is the first)
            admin.get_by_text("1 · Images and captions").first.wait_for(timeout=60_000)
            admin.goto(live.app.url + "/favicon.ico")
            assert refused == [], refused
        finally:
            browser.close()
