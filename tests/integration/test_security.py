"""The studio under attack, against the real ``python app.py`` on 127.0.0.1 with a real SQLite file.

Endpoints are enumerated from the running app (its ``/config`` dependencies and its HTTP routes), never listed
by hand; allow / deny comes from the one table in ``studio/ui/permissions_matrix.py``.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_fixtures import controlnet_dir, fast_cpu, lora_files, sd1_dir  # noqa: F401
from gradio_http import GradioSession, Outcome
from live_server import REPO_ROOT, LiveApp, start_app
from security_setup import (
    ADMIN_PASSWORD,
    BRAND,
    MEMBERS,
    PASSWORDS,
    ROLES,
    SecretFiles,
    make_model_dir,
    populate,
)

from studio.ui.permissions_matrix import ENDPOINTS, access_for, base_name

WRONG_PASSWORDS = [f"wrong-guess-{i}-xyzzy" for i in range(6)]
CALLERS = ("admin", "mia", "olga", "rex", "rita")  # admin; marketer member / not; reviewer member / not


@dataclass
class Live:
    app: LiveApp
    secrets: SecretFiles
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def db(self) -> Path:
        return self.secrets.database


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory,
    sd1_dir: Path,  # noqa: F811
    controlnet_dir: Path,  # noqa: F811
    lora_files: dict[str, Path],  # noqa: F811
) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("security")
    home = root / "home"
    home.mkdir()
    secrets = populate(home, make_model_dir(root, sd1_dir, controlnet_dir), lora_files["a"])
    app = start_app(home, admin_password=ADMIN_PASSWORD, argv=["--no-worker"])
    try:
        with GradioSession(app.url) as session:
            assert session.login("admin", ADMIN_PASSWORD).status_code == 200
            config = session.config()
        yield Live(app=app, secrets=secrets, config=config)
    finally:
        app.stop()


def password_of(user: str) -> str:
    return ADMIN_PASSWORD if user == "admin" else PASSWORDS[user]


def endpoints(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Every event of the app that runs server code (what a logged-in page may call by index)."""
    return [d for d in config["dependencies"] if d.get("backend_fn")]


def db_state(db: Path) -> dict[str, Any]:
    """Row counts of every table but the audit log, and each image's review status."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        tables = [
            r[0]
            for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            if r[0] not in ("audit_events", "alembic_version", "sqlite_sequence")
        ]
        state: dict[str, Any] = {
            t: connection.execute(f'SELECT COUNT(*) FROM "{t}"').fetchone()[0] for t in tables
        }
        state["image_status"] = connection.execute(
            "SELECT id, review_status FROM images ORDER BY id"
        ).fetchall()
        state["roles"] = connection.execute("SELECT user_id, role FROM user_roles ORDER BY 1, 2").fetchall()
        state["disabled"] = connection.execute("SELECT username, disabled FROM users ORDER BY 1").fetchall()
    return state


# ------------------------------------------------------------------------------------ unauthenticated


def test_every_endpoint_refuses_unauthenticated_calls(live: Live) -> None:
    found = endpoints(live.config)
    assert len(found) >= 30, "the app's config should list its events"
    before = db_state(live.db)
    with httpx.Client(base_url=live.app.url, timeout=30) as anonymous:
        for dep in found:
            body = {"data": [None] * len(dep["inputs"]), "fn_index": dep["id"], "session_hash": "anon01"}
            routes = ["/gradio_api/queue/join", "/gradio_api/run/predict"]
            if dep.get("api_visibility") != "private" and dep.get("api_name"):
                name = dep["api_name"]
                routes += [
                    f"/gradio_api/call/{name}",
                    f"/gradio_api/run/{name}",
                    f"/gradio_api/call/v2/{name}",
                ]
            for route in routes:
                answer = anonymous.post(route, json=body)
                assert answer.status_code == 401, f"{route} fn {dep['id']} ({dep.get('api_name')}): {answer}"
        for route in ("/config", "/gradio_api/info", "/gradio_api/openapi.json", "/gradio_api/queue/data"):
            assert anonymous.get(route, params={"session_hash": "anon01"}).status_code == 401, route
    assert db_state(live.db) == before


# Routes a browser needs before logging in (the login page and its assets) or that Gradio keeps open
# by design; each answers without any studio data (checked below).
OPEN_ROUTES = {
    "/": "the login page",
    "/openapi.json": "FastAPI's schema of Gradio's own routes (no studio data)",
    "/login": "the login form's POST",
    "/logout": "ends a session",
    "/theme.css": "the theme's CSS",
    "/gradio_api/theme.css": "the theme's CSS",
    "/robots.txt": "crawler rules",
    "/manifest.json": "web app manifest",
    "/favicon.ico": "icon",
    "/pwa_icon": "icon",
    "/startup-events": "startup hook",
    "/token": "the caller's own token (none when logged out)",
    "/app_id": "a random id of this app",
    "/gradio_api/startup-events": "startup hook",
    "/gradio_api/token": "the caller's own token (none when logged out)",
    "/gradio_api/app_id": "a random id of this app",
    "/gradio_api/reset": "no-op",
    "/gradio_api/cancel": "cancel needs the session hash of a running event (random, per browser tab)",
    "/gradio_api/heartbeat/{session_hash}": "keeps a session alive",
    "/gradio_api/vibe-code": "vibe mode is off: answers an error",
    "/gradio_api/vibe-edit": "vibe mode is off: answers an error",
    "/gradio_api/undo-vibe-edit": "vibe mode is off: answers an error",
    "/gradio_api/custom_component/{id}/{environment}/{type}/{file_name}": "custom component code: none here",
    "/gradio_api/stream/{event_id}": "a stream needs the event id of a running event",
    "/gradio_api/stream/{event_id}/close": "a stream needs the event id of a running event",
    "/gradio_api/stream/{session_hash}/{run}/{component_id}/playlist.m3u8": "media streams: none here",
    "/gradio_api/stream/{session_hash}/{run}/{component_id}/{segment_id}.{ext}": "media streams: none here",
    "/gradio_api/stream/{session_hash}/{run}/{component_id}/playlist-file": "media streams: none here",
    "/gradio_api/run-history/connect": "run history is off",
    "/gradio_api/runs": "run history is off",
    "/gradio_api/deep_link": "an empty link unless logged in",
    "/gradio_api/user": "the caller's own name (none when logged out)",
    "/gradio_api/login_check": "says whether the caller is logged in",
    "/monitoring": "needs the monitoring key (random, printed nowhere)",
}


def app_routes(live: Live) -> list[tuple[str, set[str]]]:
    """The HTTP routes of the same app, built in-process over the same data (``gr.routes.App``)."""
    import dataclasses

    from gradio.routes import App

    from studio.config import Settings
    from studio.services.container import build_services
    from studio.ui.app import build_ui

    settings = Settings.from_env({"STUDIO_HOME": str(live.app.home)})
    services = build_services(settings, migrate=False)
    try:
        demo = build_ui(dataclasses.replace(services, settings=settings))
        demo.queue()
        app = App.create_app(demo)
        found = []
        for route in app.routes:
            path = getattr(route, "path", "")
            methods = set(getattr(route, "methods", None) or {"GET"})
            found.append((path, methods - {"HEAD", "OPTIONS"}))
            included = getattr(route, "original_router", None)  # the /gradio_api router
            for sub in getattr(included, "routes", []) or []:
                found.append((sub.path, set(getattr(sub, "methods", None) or {"GET"}) - {"HEAD"}))
        return found
    finally:
        services.close()


def test_every_http_route_refuses_anonymous_requests_or_holds_no_studio_data(live: Live) -> None:
    routes = app_routes(live)
    assert len(routes) > 40
    checked, problems = 0, []
    body = {"data": [], "session_hash": "x1", "event_id": "x1"}
    with httpx.Client(base_url=live.app.url, timeout=30) as anonymous:
        for path, methods in routes:
            if (
                not path.startswith("/")
                or "{path" in path
                or path.startswith(("/assets", "/static", "/svelte"))
            ):
                continue  # file routes: test_private_files_are_not_served
            url = re.sub(r"\{[^}]+\}", "x1", path.rstrip("/") or "/")
            for method in sorted(methods):
                with anonymous.stream(method, url, json=body) as answer:
                    streaming = "event-stream" in answer.headers.get("content-type", "")
                    text = "" if streaming else answer.read().decode(errors="replace")  # SSE never ends
                checked += 1
                for secret in ("Acme", "acme style", "shinystyle", *PASSWORDS.values(), ADMIN_PASSWORD):
                    if answer.status_code < 400 and secret in text:
                        problems.append(f"{method} {url} shows {secret!r}")
                if answer.status_code in (401, 403, 404, 405, 422):
                    continue
                if "/" + path.strip("/") not in OPEN_ROUTES:
                    problems.append(f"{method} {url} answered {answer.status_code} without a login")
    assert checked > 40
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------------------------------- matrix


def test_every_served_endpoint_has_a_row_in_the_permission_table(live: Live) -> None:
    served = {d["api_name"] for d in endpoints(live.config) if d.get("api_name")}
    missing = sorted(name for name in served if access_for(name) is None)
    assert not missing, f"add these endpoints to studio/ui/permissions_matrix.py ENDPOINTS: {missing}"
    unused = sorted(set(ENDPOINTS) - {base_name(n) for n in served})
    assert not unused, f"rows for endpoints the app no longer serves: {unused}"


class Caller:
    """One logged-in user; a fresh session hash per endpoint (as a fresh browser tab)."""

    def __init__(self, live: Live, user: str) -> None:
        self.live, self.user = live, user
        self.session = GradioSession(live.app.url, timeout=300)
        assert self.session.login(user, password_of(user)).status_code == 200, user
        self.counter = 0
        self.last: Outcome | None = None

    def fresh_tab(self) -> None:
        self.session.session_hash = f"{self.user}{self.counter:04d}x"
        self.counter += 1

    def unique(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.user}-{self.counter}"

    def choices_of_last(self, status: str | None = None) -> list[Any]:
        """Values of the last CheckboxGroup update a setup step returned (the ids a page offered); when the
        page offered none (the caller may not see them), ids of the brand's images all the same: an attacker
        would send those."""
        for item in self.last.data if self.last and self.last.data else []:
            if isinstance(item, dict) and item.get("choices"):
                return [c[1] if isinstance(c, list | tuple) else c for c in item["choices"]]
        query = "SELECT id FROM images" + (" WHERE review_status = ?" if status else "") + " ORDER BY id"
        with sqlite3.connect(f"file:{self.live.db}?mode=ro", uri=True) as connection:
            return [r[0] for r in connection.execute(query, (status,) if status else ())]


def _first_upload(caller: Caller, live: Live) -> dict[str, Any]:
    path = caller.session.upload("style.safetensors", live.secrets.lora.read_bytes())
    return {"path": path, "orig_name": "style.safetensors", "meta": {"_type": "gradio.FileData"}}


def _png_upload(caller: Caller) -> dict[str, Any]:
    from security_setup import png_bytes

    path = caller.session.upload("train.png", png_bytes())
    return {"path": path, "orig_name": "train.png", "meta": {"_type": "gradio.FileData"}}


def _brand_form_slug(caller: Caller) -> str:
    """Admins edit the brand they created in this run; others try the shared brand."""
    return caller.unique("sec") if caller.user != "admin" else "sec-admin-made"


LABEL_VALUES: dict[str, Any] = {
    "Brand": BRAND,
    "Prompt": "a red circle",
    "CFG scale": 5,
    "Steps": 2,
    "Sampler": "Euler",
    "Size": "square",
    "Images": 1,
    "Seed": 7,
    "Comment (required to reject)": "off brand",
    "One comment for all (required to reject)": "bulk decision",
    "Password": "a-new-password-1",
    "Roles": ["marketer"],
    "Job": 1,  # ids a browser could send: none exists, so admins hear "not found", others "may not"
    "Dataset": 1,
    "Adapter": "shine",
}

# Per endpoint (base name): label → value or callable(caller, live); "_setup": endpoints run first in the
# same session (so session State holds what a browser's would); "_event": the event data.
BRAND_FORM = {
    "Name": "Security Brand",
    "Palette": "#ff0000, #ffffff",
    "Style prompt template": "{prompt}, sec style",
    "Size presets": "square | square 1:1 | 32x32",
}
BRANDS_TAB = {"_setup": ["list_rows"]}  # the Brands tab's picker offers the caller's brands
EXAMPLES: dict[str, dict[str, Any]] = {
    "show": {"_setup": ["review_queue"]},
    "review_approve": {"_setup": ["review_queue"]},
    "review_reject": {"_setup": ["review_queue"]},
    "handler": {
        "_setup": ["review_queue"],
        "Select images": lambda c, _: c.choices_of_last("pending")[:1],
    },
    "open_image": {"_setup": ["list_page"], "_event": {"index": 0, "value": None, "selected": True}},
    "regenerate": {"_setup": ["list_page", "open_image"]},
    "make_remix": {"_setup": ["list_page", "open_image"]},
    "compare": {"_setup": ["list_page"], "Images on this page": lambda c, _: c.choices_of_last()[:2]},
    "export_selected": {
        "_setup": [("list_page", {"Status": "approved"})],
        "Images on this page": lambda c, _: c.choices_of_last("approved")[:1],
    },
    "export_matching": {"Status": "approved"},
    "create_brand": {
        **BRAND_FORM,
        "Slug": lambda c, _: "sec-admin-made" if c.user == "admin" else c.unique("sec"),
    },
    "update_brand": {**BRAND_FORM, "Slug": lambda c, _: "sec-admin-made" if c.user == "admin" else BRAND},
    "get_brand": BRANDS_TAB,
    "load_form": BRANDS_TAB,
    "upload_lora": {
        **BRANDS_TAB,
        "LoRA file (.safetensors)": _first_upload,
        "Adapter name": lambda c, _: c.unique("ad"),
    },
    "grant_brand": {"_setup": ["list_rows", "member_choices"], "User": "zed"},  # picked from the users
    "revoke_brand": {"_setup": ["list_rows", "member_choices"], "User": "zed"},
    "add_user": {"Username": lambda c, _: c.unique("new")},
    "create_dataset": {"New dataset name": lambda c, _: c.unique("set")},
    "add_images": {"Images (PNG, JPEG, WebP) or a zip": lambda c, live: [_png_upload(c)]},
    "set_roles": {"Username": "zed"},
    "reset_password": {"Username": "zed"},
    "disable_user": {"Username": "zed"},
    "enable_user": {"Username": "zed"},
}


def _by_base(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    first: dict[str, dict[str, Any]] = {}
    for dep in endpoints(config):
        if dep.get("api_name"):
            first.setdefault(base_name(dep["api_name"]), dep)
    return first


def _inputs(
    dep: dict[str, Any], components: dict[int, Any], caller: Caller, live: Live, extra: dict[str, Any]
) -> list[Any]:
    examples = {**EXAMPLES.get(base_name(dep["api_name"]), {}), **extra}
    data = []
    for cid in dep["inputs"]:
        component = components[cid]
        label = component["props"].get("label")
        if component["type"] == "state":
            value = None
        elif label in examples:
            value = examples[label]
        elif label in LABEL_VALUES:
            value = LABEL_VALUES[label]
        else:
            value = component["props"].get("value")
        data.append(value(caller, live) if callable(value) else value)
    return data


def _call(
    dep: dict[str, Any],
    components: dict[int, Any],
    caller: Caller,
    live: Live,
    extra: dict[str, Any] | None = None,
) -> Outcome:
    examples = EXAMPLES.get(base_name(dep["api_name"]), {})
    data = _inputs(dep, components, caller, live, extra or {})
    return caller.session.call(
        dep["id"], data, queued=dep.get("queue") is not False, event_data=examples.get("_event")
    )


def _expected(user: str, api_name: str) -> bool:
    access = access_for(api_name)
    assert access is not None, api_name
    roles = frozenset({"admin"}) if user == "admin" else frozenset({ROLES[user]})
    return access.allows(roles, is_member=user in MEMBERS)


# an allowed call may still fail on its input (a job id that does not exist…), never with a refusal
REFUSAL = re.compile(r"may not|needs the|please log in", re.I)
DENIAL = re.compile(
    r"may not|not found|needs the|please log in|is empty|open an image|pick an image|choices", re.I
)


@pytest.mark.parametrize(
    "who",
    [
        # admin (all allowed), a marketer member, a reviewer of another brand: every kind of refusal
        pytest.param(("admin", "mia", "rita"), id="three-callers"),
        pytest.param(CALLERS, id="five-callers", marks=pytest.mark.slow),
    ],
)
def test_role_matrix_matches_the_permission_table(live: Live, who: tuple[str, ...]) -> None:
    deps = endpoints(live.config)
    components = {c["id"]: c for c in live.config["components"]}
    first = _by_base(live.config)
    callers = {user: Caller(live, user) for user in who}
    mismatches: list[str] = []
    report: list[str] = []
    state: dict[str, Any] | None = None
    try:
        seen: set[tuple[Any, ...]] = set()
        for dep in deps:
            name = dep.get("api_name")
            if not name or access_for(name) is None:
                continue
            same = (base_name(name), tuple(dep["inputs"]), tuple(dep["outputs"]))
            if same in seen:  # a chained repeat of an event already checked (same handler, same wiring)
                continue
            seen.add(same)
            for user, caller in callers.items():
                caller.fresh_tab()
                for step in EXAMPLES.get(base_name(name), {}).get("_setup", []):
                    step_name, overrides = step if isinstance(step, tuple) else (step, {})
                    caller.last = _call(first[step_name], components, caller, live, overrides)
                before = db_state(live.db) if state is None else state
                started = time.monotonic()
                outcome = _call(dep, components, caller, live)
                took = time.monotonic() - started
                allowed = _expected(user, name)
                verdict = "ok " if outcome.ok else "err"
                report.append(f"{name:18} {user:6} {verdict} {took:5.2f}s {outcome.error[:70]}")
                if allowed and not outcome.ok and REFUSAL.search(outcome.error):
                    mismatches.append(f"{name} as {user}: refused ({outcome.error[:120]})")
                elif not allowed and outcome.ok:
                    mismatches.append(f"{name} as {user}: allowed, the table says no")
                elif not allowed and not DENIAL.search(outcome.error):
                    mismatches.append(f"{name} as {user}: failed but not as a refusal: {outcome.error[:120]}")
                state = db_state(live.db)
                if not allowed and state != before:
                    mismatches.append(f"{name} as {user}: refused but the database changed")
    finally:
        for caller in callers.values():
            caller.session.__exit__()
        (live.app.home / "matrix.txt").write_text("\n".join(report))
    assert not mismatches, "\n".join(mismatches)
    decided = db_state(live.db)["image_status"]
    assert any(status == "approved" for _, status in decided) and any(s == "rejected" for _, s in decided)


# ----------------------------------------------------------------------------------------- file routes


def _file_urls(target: Path, home: Path) -> list[str]:
    """Ways of asking Gradio's file routes for ``target``: absolute, relative from the image folder with
    ``../``, and URL-encoded (once and twice)."""
    images = home / "images"
    relative = Path(*[".."] * len(images.relative_to(home).parts)) / target.relative_to(home)
    plain = [str(target), str(images / relative), str(relative)]
    encoded = [urllib.parse.quote(p, safe="") for p in plain]
    double = [urllib.parse.quote(p, safe="") for p in encoded]
    dotted = [
        str(images) + "/%2e%2e/" + str(target.relative_to(home)),
        str(images) + "/..%2f" + str(target.name),
    ]
    urls = []
    for value in plain + encoded + double + dotted:
        for prefix in ("/gradio_api/file=", "/file=", "/gradio_api/file/", "/gradio_api/proxy="):
            urls.append(prefix + value)
    return urls


def test_private_files_are_not_served_even_to_an_admin(live: Live) -> None:
    secrets = live.secrets
    targets = [secrets.database, secrets.lora, secrets.dataset_image, secrets.dotenv, secrets.template]
    with GradioSession(live.app.url) as admin:
        assert admin.login("admin", ADMIN_PASSWORD).status_code == 200
        served_image = next((live.app.home / "images").rglob("*.png"), None)
        assert served_image is not None, "the matrix test made images"
        with sqlite3.connect(f"file:{live.db}?mode=ro", uri=True) as connection:
            image_id = connection.execute("SELECT id FROM images ORDER BY id LIMIT 1").fetchone()[0]
        link = f"/studio/files/image/{image_id}/image-{image_id}.png"
        good = admin.http.get(link)
        assert good.status_code == 200 and good.content[:4] == b"\x89PNG"  # images are served by their links
        assert admin.http.get(f"/gradio_api/file={served_image}").status_code in (403, 404)  # never by path
        with httpx.Client(base_url=live.app.url, timeout=30) as anonymous:
            assert anonymous.get(link).status_code == 404
        outside = [Path("/etc/passwd"), REPO_ROOT / "app.py", REPO_ROOT / "pyproject.toml"]
        for target in targets:
            for url in _file_urls(target, live.app.home):
                answer = admin.http.get(url)
                assert answer.status_code >= 400, f"{url} served {target.name}"
                assert target.read_bytes()[:64] not in answer.content
        for target in outside:
            for prefix in ("/gradio_api/file=", "/file=", "/gradio_api/file/"):
                for value in (str(target), urllib.parse.quote(str(target), safe="")):
                    assert admin.http.get(prefix + value).status_code >= 400, prefix + value
            assert (
                admin.http.get(f"/gradio_api/file={live.app.home}/images/../../../../..{target}").status_code
                >= 400
            )
        for name in (".env", "studio.db", "../studio.db", "../.env", "%2e%2e/.env", "..%2f.env"):
            for prefix in ("/gradio_api/file=", "/file=", "/"):
                answer = admin.http.get(prefix + name)
                assert b"do-not-serve-me" not in answer.content and b"SQLite format" not in answer.content, (
                    name
                )


def _temp_files(home: Path) -> list[Path]:
    gradio_tmp = home / "cache" / "gradio"
    return [p for p in gradio_tmp.rglob("*") if p.is_file()] if gradio_tmp.exists() else []


def test_uploads_over_the_limit_are_refused_before_they_fill_the_disk(live: Live) -> None:
    limit = 50 * 1024 * 1024
    sent = {"bytes": 0}

    def body() -> Iterator[bytes]:  # streamed, with no Content-Length to trust
        boundary_head = (
            b'--XyZ\r\nContent-Disposition: form-data; name="files"; filename="big.safetensors"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n"
        )
        yield boundary_head
        chunk = b"\0" * (1024 * 1024)
        for _ in range(80):  # 80 MiB offered, 50 MiB allowed
            sent["bytes"] += len(chunk)
            yield chunk
        yield b"\r\n--XyZ--\r\n"

    before = {p: p.stat().st_size for p in _temp_files(live.app.home)}
    with GradioSession(live.app.url) as admin:
        assert admin.login("admin", ADMIN_PASSWORD).status_code == 200
        try:
            answer = admin.http.post(
                "/gradio_api/upload",
                content=body(),
                headers={"Content-Type": "multipart/form-data; boundary=XyZ"},
            )
            status = answer.status_code
        except httpx.HTTPError:  # the server may close the connection as soon as the limit is passed
            status = 413
    assert status == 413 or status >= 400
    new = [p for p in _temp_files(live.app.home) if p not in before]
    assert all(p.stat().st_size <= limit for p in new), [(p, p.stat().st_size) for p in new]
    assert sum(p.stat().st_size for p in new) <= limit


# --------------------------------------------------------------------------------------------- login


def _events(db: Path, action_prefix: str, target: str) -> list[tuple[str, str, str]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return connection.execute(
            "SELECT action, target, details FROM audit_events WHERE action LIKE ? AND target = ? ORDER BY id",
            (action_prefix + "%", target),
        ).fetchall()


def test_five_wrong_passwords_lock_the_account_and_every_attempt_is_audited(live: Live) -> None:
    with GradioSession(live.app.url) as browser:
        for attempt in WRONG_PASSWORDS[:5]:
            assert browser.login("lara", attempt).status_code == 400
        locked = browser.login("lara", PASSWORDS["lara"])
        assert locked.status_code == 400, "the right password must not open a locked account"
        assert browser.http.get("/config").status_code == 401
    failures = _events(live.db, "login.", "lara")
    assert [a for a, _, _ in failures] == ["login.failed"] * 6
    details = [json.loads(d) for _, _, d in failures]
    assert [d.get("failures") for d in details[:5]] == [1, 2, 3, 4, 5]
    assert "locked_until" in details[4]
    assert details[5]["reason"] == "locked"
    with GradioSession(live.app.url) as other:  # other accounts are not affected
        assert other.login("rex", PASSWORDS["rex"]).status_code == 200


def test_passwords_never_reach_the_server_log_or_the_audit_table(live: Live) -> None:
    time.sleep(0.5)  # let the server flush its log
    log = live.app.log.read_text(errors="replace")
    with sqlite3.connect(f"file:{live.db}?mode=ro", uri=True) as connection:
        audit = "\n".join(" ".join(map(str, r)) for r in connection.execute("SELECT * FROM audit_events"))
    assert "login.failed" in audit and "login.succeeded" in audit
    for secret in [ADMIN_PASSWORD, *PASSWORDS.values(), *WRONG_PASSWORDS, LABEL_VALUES["Password"]]:
        assert secret not in log, f"a password is in the server log: {secret[:4]}…"
        assert secret not in audit, f"a password is in the audit table: {secret[:4]}…"


# ------------------------------------------------------------------------------------- bind and share


def test_no_share_true_anywhere_in_the_code() -> None:
    pattern = re.compile(r"share\s*=\s*" + "True")
    sources = [
        REPO_ROOT / "app.py",
        *(REPO_ROOT / "studio").rglob("*.py"),
        *(REPO_ROOT / "benchmarks").rglob("*.py"),
    ]
    offenders = [str(p) for p in sources if pattern.search(p.read_text(errors="replace"))]
    assert len(sources) > 20 and not offenders, offenders


def test_default_bind_is_loopback_and_launch_never_shares(services: Any) -> None:
    from studio.config import Settings
    from studio.ui.app import launch_options

    assert Settings.from_env({"STUDIO_HOME": "/tmp/unused"}).host == "127.0.0.1"
    options = launch_options(services)
    assert options["server_name"] == "127.0.0.1"
    assert options["share"] is False
    assert options["show_error"] is False  # an unexpected exception's text (a path, SQL) never reaches a user
    assert options["auth"].check("nobody", "not-a-password") is False  # the studio's own login check


@pytest.mark.parametrize("how", ["flag", "env"])
def test_binding_beyond_loopback_without_an_admin_password_refuses_to_start(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app_module = _app_module()

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("STUDIO_ADMIN_PASSWORD", raising=False)
    argv: list[str] = []
    if how == "flag":
        argv = ["--host", "0.0.0.0"]
    else:
        monkeypatch.setenv("STUDIO_HOST", "192.168.1.20")
    started: list[Any] = []
    monkeypatch.setattr("gradio.Blocks.launch", lambda *a, **k: started.append(k))
    assert app_module.main(argv) == 2
    err = capsys.readouterr().err
    assert "refusing to bind" in err and "STUDIO_ADMIN_PASSWORD" in err
    assert not started
    assert not (tmp_path / "home").exists(), "nothing is created before the refusal"


def test_binding_beyond_loopback_is_allowed_with_an_admin_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app_module = _app_module()

    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("STUDIO_ADMIN_PASSWORD", "a-long-admin-password")
    launched: list[dict[str, Any]] = []
    monkeypatch.setattr("gradio.Blocks.launch", lambda self, **k: launched.append(k))
    assert app_module.main(["--host", "0.0.0.0", "--port", "7999", "--no-worker"]) == 0
    assert launched and launched[0]["server_name"] == "0.0.0.0" and launched[0]["share"] is False


def _app_module() -> Any:
    """``app.py`` imported from the repository root (it is a script, not a package module)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("studio_app_main", REPO_ROOT / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
