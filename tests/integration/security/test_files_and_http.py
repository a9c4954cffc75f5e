"""Files, uploads, queue results and other sites' requests, against the real ``python app.py`` on 127.0.0.1
(a real SQLite file; images made by the app's own /generate endpoint through ``gradio_client``).

The data folder is :mod:`security_setup`'s (brand acme: mia marketer member, rex reviewer member, olga and
rita not members) plus max (marketer, member of acme) and gus (marketer of another brand, globex).
Changes to memberships, accounts and reviews are made through the services in this process, on the same
database, while the app runs: every file request must follow the database as it is now.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_fixtures import controlnet_dir, fast_cpu, lora_files, sd1_dir  # noqa: F401
from gradio_http import GradioSession
from integration.security_setup import ADMIN_PASSWORD, BRAND, PASSWORDS, make_model_dir, png_bytes, populate
from live_server import LiveApp, free_port, start_app
from support.chromium import CHROMIUM, CHROMIUM_ARGS

from studio.services.views import SYSTEM, Actor

PASSWORD = "files-security-pass"
QUOTA_MB = 3
STALE_ENTRY = "ab" * 32  # a cache entry (a sha256-named folder) left by an earlier run


@dataclass
class Live:
    app: LiveApp
    pending: int  # mia's image, pending
    approved: int  # max's image, approved by rex
    pending_path: Path
    generate_output: str  # the raw JSON /generate answered with
    job_id: int
    sample_path: Path

    @property
    def home(self) -> Path:
        return self.app.home


def password_of(user: str) -> str:
    return ADMIN_PASSWORD if user == "admin" else PASSWORDS.get(user, PASSWORD)


def studio_services(home: Path) -> Any:
    """Services over the app's data folder (the app keeps running on the same database)."""
    from argon2 import PasswordHasher, profiles

    from studio.config import Settings
    from studio.services.container import build_services

    settings = Settings.from_env({"STUDIO_HOME": str(home)})
    return build_services(
        settings, migrate=False, password_hasher=PasswordHasher.from_parameters(profiles.CHEAPEST)
    )


def more_people(home: Path, model_dir: Path) -> None:
    from studio.services.brand_files import BrandSpec

    services = studio_services(home)
    try:
        services.users.add_user(SYSTEM, "max", ["marketer"], PASSWORD)
        services.brands.grant(SYSTEM, BRAND, "max")
        services.brands.create_brand(
            SYSTEM,
            BrandSpec(
                slug="globex",
                name="Globex",
                palette=("#0000ff",),
                style_template="{prompt}",
                base_model=str(model_dir),
            ),
        )
        services.users.add_user(SYSTEM, "gus", ["marketer"], PASSWORD)
        services.brands.grant(SYSTEM, "globex", "gus")
    finally:
        services.close()


def generate(url: str, user: str) -> dict[str, Any]:
    """One image through /generate as ``user`` (the page's way: queue/join + the SSE stream); the raw
    answer, and the image id."""
    with GradioSession(url) as page:
        assert page.login(user, password_of(user)).status_code == 200
        config = page.config()
        dep = next(d for d in config["dependencies"] if d.get("api_name") == "generate")
        components = {c["id"]: c for c in config["components"]}
        values = {"Brand": BRAND, "Prompt": "a red circle", "Steps": 2, "Seed": "11", "Images": 1}
        data = []
        for cid in dep["inputs"]:
            props = components[cid]["props"]
            if components[cid]["type"] == "state":
                data.append(None)
            else:
                data.append(values.get(props.get("label"), props.get("value")))
        answer = page.call(dep["id"], data)
        assert answer.ok, answer.error
        raw = json.dumps(answer.data)
        image_id = answer.data[-1]["generations"][0]["images"][0]["id"]
        return {"raw": raw, "id": image_id, "data": answer.data}


def training_samples(home: Path) -> tuple[int, Path]:
    """A job with a checkpoint whose sample image sits where the worker puts them (a guessable path),
    recorded through the job queue as the worker records it."""
    from studio.training.queue import JobQueue
    from studio.training.worker import job_dirs

    services = studio_services(home)
    try:
        shots = home / "shots"
        shots.mkdir(exist_ok=True)
        files = []
        for i in range(2):
            (shots / f"s{i}.png").write_bytes(png_bytes(colour="green"))
            files.append(shots / f"s{i}.png")
        ds = services.datasets.create_dataset(SYSTEM, BRAND, "shots")
        services.datasets.add_images(SYSTEM, ds.id, files)
        services.datasets.caption_all(SYSTEM, ds.id, template="{trigger}, a green square", trigger="grn")
        job = services.training.queue_training(SYSTEM, BRAND, "grn", ds.id, trigger="grn", steps=2)
        queue = JobQueue(services.sessions)
        claimed = queue.claim("test-worker")
        assert claimed is not None and claimed.id == job.id
        _, samples_dir, _ = job_dirs(services.settings, job.id)
        sample = samples_dir / "step-000002" / "sample-0.png"
        sample.parent.mkdir(parents=True, exist_ok=True)
        sample.write_bytes(png_bytes(colour="green"))
        assert queue.add_checkpoint(
            job.id, "test-worker", step=2, file_path="training/x.safetensors", sha256="0" * 64,
            state_path=None, sample_paths=[sample.relative_to(home).as_posix()], loss=0.1,
        )  # fmt: skip
        queue.finish(job.id, "test-worker", "succeeded", "done")
        return job.id, sample
    finally:
        services.close()


@pytest.fixture(scope="module")
def live(
    tmp_path_factory: pytest.TempPathFactory,
    sd1_dir: Path,  # noqa: F811
    controlnet_dir: Path,  # noqa: F811
    lora_files: dict[str, Path],  # noqa: F811
) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("files")
    home = root / "home"
    home.mkdir()
    model_dir = make_model_dir(root, sd1_dir, controlnet_dir)
    populate(home, model_dir, lora_files["a"])
    more_people(home, model_dir)
    stale = home / "cache" / "gradio" / STALE_ENTRY / "left-over.bin"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"\0" * 1024)
    app = start_app(
        home,
        admin_password=ADMIN_PASSWORD,
        argv=["--no-worker"],
        STUDIO_UPLOAD_QUOTA_MB=str(QUOTA_MB),
        STUDIO_UPLOAD_CACHE_MINUTES="1",
    )
    try:
        mine = generate(app.url, "mia")
        theirs = generate(app.url, "max")
        services = studio_services(home)
        try:
            services.review.approve(Actor.user("rex"), theirs["id"], "on brief")
            pending_path = services.generation.get_image(SYSTEM, mine["id"]).path
        finally:
            services.close()
        job_id, sample = training_samples(home)
        yield Live(
            app=app,
            pending=mine["id"],
            approved=theirs["id"],
            pending_path=pending_path,
            generate_output=mine["raw"],
            job_id=job_id,
            sample_path=sample,
        )
    finally:
        app.stop()


def session(live: Live, user: str) -> GradioSession:
    page = GradioSession(live.app.url, timeout=60)
    assert page.login(user, password_of(user)).status_code == 200, user
    return page


def image_url(image_id: int) -> str:
    return f"/studio/files/image/{image_id}/image-{image_id}.png"


def status_for(live: Live, user: str | None, url: str) -> int:
    if user is None:
        with httpx.Client(base_url=live.app.url, timeout=30) as anonymous:
            return anonymous.get(url).status_code
    with session(live, user) as page:
        answer = page.http.get(url)
        if answer.status_code == 200:
            assert answer.content[:4] in (b"\x89PNG", b"PK\x03\x04"), url
        return answer.status_code


def named_call(page: GradioSession, prefix: str, data: list[Any] | None = None) -> Any:
    """Run the endpoint named ``prefix``… with ``data`` (default: every input as it starts)."""
    config = page.config()
    dep = next(d for d in config["dependencies"] if (d.get("api_name") or "").startswith(prefix))
    if data is None:
        components = {c["id"]: c for c in config["components"]}
        data = [components[cid]["props"].get("value") for cid in dep["inputs"]]
    answer = page.call(dep["id"], data)
    assert answer.ok, answer.error
    return answer.data


# ---------------------------------------------------------------------------------------------- files


def test_image_links_follow_the_gallery_rule_and_show_no_server_path(live: Live) -> None:
    assert str(live.home) not in live.generate_output, "a component value shows the data folder"
    assert "/gradio_api/file=" not in live.generate_output
    assert f"/studio/files/image/{live.pending}/" in live.generate_output
    pending, approved = image_url(live.pending), image_url(live.approved)
    expected = {
        # user: (mia's pending image, max's approved image)
        "mia": (200, 200),  # her own; approved images of her brand
        "max": (404, 200),  # another member's pending image is not his to see
        "rex": (200, 200),  # reviewers see every image of their brands
        "admin": (200, 200),
        "gus": (404, 404),  # a marketer of another brand
        "olga": (404, 404),  # a marketer of no brand
        "rita": (404, 404),  # a reviewer of no brand
        None: (404, 404),  # not logged in
    }
    for user, (want_pending, want_approved) in expected.items():
        assert status_for(live, user, pending) == want_pending, user
        assert status_for(live, user, approved) == want_approved, user
    assert status_for(live, "mia", f"/studio/files/image/{live.pending + 1000}/x.png") == 404


def test_gradio_file_route_serves_no_studio_file(live: Live) -> None:
    with session(live, "gus") as gus:  # today any login got another brand's pending image by its path
        for url in (
            f"/gradio_api/file={live.pending_path}",
            f"/gradio_api/file={live.sample_path}",
            f"/file={live.pending_path}",
        ):
            answer = gus.http.get(url)
            assert answer.status_code in (403, 404), url
            assert answer.content[:4] != b"\x89PNG"


def test_a_revoke_or_a_disable_ends_file_access_at_once(live: Live) -> None:
    pending, approved = image_url(live.pending), image_url(live.approved)
    services = studio_services(live.home)
    with session(live, "rex") as rex, session(live, "max") as max_:
        try:
            assert rex.http.get(pending).status_code == 200
            services.brands.revoke(SYSTEM, BRAND, "rex")
            assert rex.http.get(pending).status_code == 404  # the same session, the next request
            assert max_.http.get(approved).status_code == 200
            services.users.disable(SYSTEM, "max")
            refused = max_.http.get(approved)
            assert refused.status_code == 404 and refused.content[:4] != b"\x89PNG"
        finally:
            services.brands.grant(SYSTEM, BRAND, "rex")
            services.users.enable(SYSTEM, "max")
            services.close()


def test_exports_are_served_only_to_their_maker(live: Live) -> None:
    with session(live, "mia") as mia:
        data = named_call(mia, "export_matching")  # everything approved she sees: max's image
        shown = json.dumps(data)
        assert str(live.home) not in shown and "/gradio_api/file=" not in shown
        url = data[0]["url"]
        assert re.search(r"/studio/files/export/export-[0-9-]+-[0-9a-f]{32}\.zip$", url), url
        path = url[url.index("/studio/files/") :]
        got = mia.http.get(path)
        assert got.status_code == 200 and got.content[:4] == b"PK\x03\x04"
        assert "attachment" in got.headers["content-disposition"]
    for user in ("max", "gus", "admin", None):  # another member, another brand, even an admin
        assert status_for(live, user, path) == 404, user
    zips = list((live.home / "exports").glob("export-*.zip"))
    with session(live, "gus") as gus:
        for found in zips:
            assert gus.http.get(f"/gradio_api/file={found}").status_code in (403, 404)


def test_training_samples_are_for_admins_through_links(live: Live) -> None:
    with session(live, "admin") as admin:
        data = named_call(admin, "show_job", [str(live.job_id)])
        shown = json.dumps(data)
        assert str(live.home) not in shown and "/gradio_api/file=" not in shown
        link = f"/studio/files/training/{live.job_id}/2/samples/0/sample-0.png"
        assert link in shown
        assert admin.http.get(link).status_code == 200
        assert admin.http.get(link.replace("/samples/0/", "/samples/1/")).status_code == 404
    for user in ("mia", "rex", None):
        assert status_for(live, user, link) == 404, user


# --------------------------------------------------------------------------------------------- uploads


def _upload(page: GradioSession, size: int, name: str = "layout.png") -> httpx.Response:
    return page.http.post("/gradio_api/upload", files={"files": (name, b"\0" * size)})


def test_the_upload_cache_is_emptied_at_start_and_swept_on_a_timer(live: Live) -> None:
    cache = live.home / "cache" / "gradio"
    assert not (cache / STALE_ENTRY).exists(), "an earlier run's upload survived the start"
    old = cache / ("cd" * 32) / "old.bin"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"\0" * 1024)
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    os.utime(old.parent, (two_hours_ago, two_hours_ago))
    deadline = time.monotonic() + 60  # the app sweeps every 15 s with STUDIO_UPLOAD_CACHE_MINUTES=1
    while old.exists() and time.monotonic() < deadline:
        time.sleep(1)
    assert not old.exists(), "a cache entry older than STUDIO_UPLOAD_CACHE_MINUTES was kept"


def test_each_user_has_an_upload_quota(live: Live) -> None:
    two_mb = 2 * 1024 * 1024
    with session(live, "mia") as mia, session(live, "max") as max_:
        assert _upload(mia, two_mb).status_code == 200
        refused = _upload(mia, two_mb)
        assert refused.status_code == 413 and "STUDIO_UPLOAD_QUOTA_MB" in refused.text
        assert _upload(max_, two_mb).status_code == 200  # another user is not held back
        head = b'--XyZ\r\nContent-Disposition: form-data; name="files"; filename="a.bin"\r\n\r\n'
        chunked = mia.http.post(  # no Content-Length: the quota could not be checked before writing
            "/gradio_api/upload",
            content=iter([head, b"abc\r\n--XyZ--\r\n"]),
            headers={"Content-Type": "multipart/form-data; boundary=XyZ"},
        )
        assert chunked.status_code == 411


def test_an_upload_without_a_file_name_is_a_clear_400(live: Live) -> None:
    with session(live, "max") as max_:
        answer = max_.http.post("/gradio_api/upload", files={"files": ("", b"abc")})
        assert answer.status_code == 400 and "file name" in answer.text
        assert _upload(max_, 10).status_code == 200


# ------------------------------------------------------------------------------------------ queue results


def test_queue_results_reach_only_the_session_that_asked(live: Live) -> None:
    with session(live, "mia") as mia, session(live, "gus") as gus:
        config = mia.config()
        dep = next(d for d in config["dependencies"] if d.get("api_name") == "list_brands")
        body = {"data": [], "fn_index": dep["id"], "session_hash": mia.session_hash, "trigger_id": None}
        joined = mia.http.post("/gradio_api/queue/join", json=body)
        assert joined.status_code == 200
        event_id = joined.json()["event_id"]
        # gus knows mia's session hash: the stream, a heartbeat, a join, a cancel and /call are all refused
        stolen = gus.http.get("/gradio_api/queue/data", params={"session_hash": mia.session_hash}, timeout=15)
        assert stolen.status_code == 404 and BRAND not in stolen.text
        assert gus.http.get(f"/gradio_api/heartbeat/{mia.session_hash}", timeout=15).status_code == 404
        assert gus.http.post("/gradio_api/queue/join", json=body).status_code == 404
        cancel = {"session_hash": mia.session_hash, "fn_index": dep["id"], "event_id": event_id}
        assert gus.http.post("/gradio_api/cancel", json=cancel).status_code == 404
        assert gus.http.get(f"/gradio_api/call/list_brands/{event_id}", timeout=15).status_code == 404
        assert gus.http.get(f"/gradio_api/call/list_brands/{mia.session_hash}", timeout=15).status_code == 404
        with httpx.Client(base_url=live.app.url, timeout=15) as anonymous:
            answer = anonymous.get(f"/gradio_api/heartbeat/{mia.session_hash}")
            assert answer.status_code == 404
        outcome = mia._await(event_id)  # mia still gets her own result
        assert outcome.ok and BRAND in json.dumps(outcome.data)


def test_gradio_client_still_runs_the_api(live: Live) -> None:
    from gradio_client import Client

    client = Client(live.app.url, auth=("mia", PASSWORDS["mia"]), verbose=False)
    gallery, _, details = client.predict(
        BRAND, "a red circle", "", 5, 2, "Euler", "square", 1, "12", [], 1.0, 1.0, 1.0, 1.0,
        api_name="/generate",
    )  # fmt: skip
    image = gallery[0]["image"]
    downloaded = Path(image if isinstance(image, str) else image["path"])
    assert downloaded.read_bytes()[:4] == b"\x89PNG" and not downloaded.is_relative_to(live.home)
    assert details["generations"][0]["images"][0]["seed"] == 12


# ------------------------------------------------------------------------------------------ other sites


def test_requests_from_another_site_are_refused(live: Live) -> None:
    evil = {"Origin": "http://evil.example"}
    with session(live, "mia") as mia:
        own = {"Origin": live.app.url}
        assert _upload(mia, 10).status_code == 200  # no Origin: a script, gradio_client
        small = {"files": ("a.png", b"x")}
        assert mia.http.post("/gradio_api/upload", files=small, headers=own).status_code == 200
        assert mia.http.post("/gradio_api/upload", files=small, headers=evil).status_code == 403
        body = {"data": [], "fn_index": 0, "session_hash": mia.session_hash, "trigger_id": None}
        assert mia.http.post("/gradio_api/queue/join", json=body, headers=evil).status_code == 403
        assert mia.http.post("/gradio_api/run/predict", json=body, headers=evil).status_code == 403
        assert mia.http.get("/config", headers=evil).status_code == 403  # nor read anything
        spoofed = {**evil, "X-Forwarded-Host": "evil.example"}  # a header a page may add (Gradio's CORS)
        assert mia.http.post("/gradio_api/upload", files=small, headers=spoofed).status_code == 403
        post_site = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}
        assert mia.http.post("/gradio_api/upload", files=small, headers=post_site).status_code == 403
        # /logout only as a top-level navigation of this site
        for headers in (
            {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Dest": "image"},  # <img src=/logout> on the page
            {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "document"},  # a link on another site
            {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "image"},
            evil,
        ):
            assert mia.http.get("/logout", headers=headers).status_code == 403, headers
            assert mia.http.get("/config").status_code == 200, f"logged out by {headers}"
        login = httpx.post(
            live.app.url + "/login", data={"username": "mia", "password": PASSWORDS["mia"]}, headers=evil
        )
        assert login.status_code == 403 and "set-cookie" not in login.headers
        navigate = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Dest": "document"}
        assert mia.http.get("/logout", headers=navigate).status_code == 302
        assert mia.http.get("/config").status_code == 401


class _Page(BaseHTTPRequestHandler):
    """Another site: one page that posts to the studio and loads its /logout as an image."""

    target = ""

    def do_GET(self) -> None:  # noqa: N802
        page = f"""<html><body><img id="x" src="{self.target}/logout">
<script>
const form = new FormData(); form.append("files", new Blob(["evil"]), "evil.png");
window.posted = fetch("{self.target}/gradio_api/upload", {{method: "POST", body: form, credentials: "include",
  mode: "no-cors"}}).then(() => "sent", () => "failed");
</script></body></html>"""
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(page.encode())

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.e2e
def test_a_browser_stays_logged_in_when_a_page_loads_logout_as_an_image(live: Live) -> None:
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        pytest.fail(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    _Page.target = live.app.url
    other = ThreadingHTTPServer(("127.0.0.1", free_port()), _Page)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    cache = live.home / "cache" / "gradio"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context()
                page = context.new_page()
                page.goto(live.app.url + "/")
                page.get_by_label("username").fill("mia")
                page.get_by_label("password").fill(PASSWORDS["mia"])
                page.get_by_role("button", name="Login").click()
                page.get_by_role("link", name="Log out", exact=True).wait_for(timeout=60_000)

                def logged_in() -> int:
                    return page.evaluate("fetch('/config').then(r => r.status)")

                assert logged_in() == 200
                # the studio's own page shows an image whose address is /logout (a prompt once did this)
                page.evaluate(
                    "new Promise(done => { const img = new Image(); img.onload = img.onerror = done; "
                    "img.src = '/logout'; document.body.appendChild(img); })"
                )
                assert logged_in() == 200, "an <img src=/logout> logged the user out"
                # another site: its page posts an upload and loads /logout with the studio's cookies
                before = sorted(p for p in cache.rglob("evil.png"))
                site = context.new_page()
                site.goto(f"http://127.0.0.1:{other.server_address[1]}/")
                assert site.evaluate("window.posted") in ("sent", "failed")
                site.wait_for_load_state("load")
                assert sorted(p for p in cache.rglob("evil.png")) == before
                assert logged_in() == 200
                # the Log out button still logs out
                page.get_by_role("link", name="Log out", exact=True).click()
                page.get_by_label("username").wait_for(timeout=30_000)
                assert logged_in() == 401
            finally:
                browser.close()
    finally:
        other.shutdown()
