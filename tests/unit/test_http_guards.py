"""The pure parts of the HTTP guards: which requests come from another site, which session hashes and event
ids a Gradio request names, who owns them, and which cache entries the cleaner deletes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from starlette.datastructures import Headers

from studio.ui.file_access import link_path
from studio.ui.http_guards import Owners, cross_site_refusal, named_keys, same_origin
from studio.ui.upload_guard import UploadCache


@pytest.mark.parametrize(
    ("origin", "host", "same"),
    [
        ("http://127.0.0.1:7860", "127.0.0.1:7860", True),
        ("https://studio.example.com", "studio.example.com", True),
        ("https://studio.example.com", "studio.example.com:443", True),
        ("http://studio.example.com:80", "studio.example.com", True),
        ("http://[::1]:7860", "[::1]:7860", True),
        ("http://127.0.0.1:9999", "127.0.0.1:7860", False),  # another port is another origin
        ("http://evil.example", "studio.example.com", False),
        ("null", "studio.example.com", False),
        ("file://", "studio.example.com", False),
    ],
)
def test_same_origin_compares_origin_with_host(origin: str, host: str, same: bool) -> None:
    assert same_origin(origin, Headers({"host": host})) is same


def test_x_forwarded_host_is_not_trusted() -> None:
    headers = Headers({"host": "studio.example.com", "x-forwarded-host": "evil.example"})
    assert not same_origin("http://evil.example", headers)


def _refusal(method: str, path: str, **headers: str) -> str | None:
    merged = {"host": "s:1", **{k.replace("_", "-"): v for k, v in headers.items()}}
    return cross_site_refusal(method, path, Headers(merged))


def test_cross_site_rules() -> None:
    assert _refusal("POST", "/gradio_api/upload") is None  # no browser headers: a script
    assert _refusal("POST", "/gradio_api/upload", origin="http://s:1") is None
    assert _refusal("POST", "/gradio_api/upload", origin="http://x:1") is not None
    assert _refusal("POST", "/gradio_api/upload", sec_fetch_site="cross-site") is not None
    assert _refusal("POST", "/gradio_api/upload", sec_fetch_site="same-site") is not None
    assert _refusal("GET", "/", sec_fetch_site="cross-site", sec_fetch_dest="document") is None  # a link in
    assert _refusal("GET", "/logout") is None
    assert _refusal("GET", "/logout", sec_fetch_site="same-origin", sec_fetch_dest="document") is None
    assert _refusal("GET", "/logout", sec_fetch_site="none", sec_fetch_dest="document") is None  # typed
    assert _refusal("GET", "/logout", sec_fetch_site="same-origin", sec_fetch_dest="image") is not None
    assert _refusal("GET", "/logout/", sec_fetch_site="cross-site", sec_fetch_dest="document") is not None


def test_named_keys_of_gradio_requests() -> None:
    assert named_keys("GET", "/gradio_api/queue/data", "session_hash=abc", b"") == ["abc"]
    assert named_keys("GET", "/gradio_api/heartbeat/abc", "", b"") == ["abc"]
    assert named_keys("GET", "/gradio_api/call/generate/ev1", "", b"") == ["ev1"]
    assert named_keys("POST", "/gradio_api/stream/ev1/close", "", b"") == ["ev1"]
    body = json.dumps({"session_hash": "abc", "event_id": "ev1", "fn_index": 3}).encode()
    assert named_keys("POST", "/gradio_api/cancel", "", body) == ["abc", "ev1"]
    assert named_keys("POST", "/gradio_api/queue/join", "", b"not json") == []
    assert named_keys("GET", "/config", "session_hash=abc", b"") == []


def test_owners_first_login_wins() -> None:
    owners = Owners(limit=2)
    assert owners.claim("h1", None)  # nobody holds it: not claimed by an anonymous caller
    assert owners.claim("h1", "mia") and owners.claim("h1", "MIA")
    assert not owners.claim("h1", "gus") and not owners.claim("h1", None)
    owners.claim("h2", "gus")
    owners.claim("h3", "gus")  # past the limit the oldest is forgotten
    assert owners.claim("h1", "gus")


def test_link_path_accepts_gradio_client_downloads() -> None:
    link = "/studio/files/image/3/a.png"
    assert link_path(link) == link
    assert link_path(f"/gradio_api/file=http://h:1{link}") == link
    assert link_path("/gradio_api/file=/srv/studio/images/a.png") is None
    assert link_path("/gradio_api/file=http://h:1/other") is None


def test_upload_cache_sweeps_only_its_own_old_entries(tmp_path: Path) -> None:
    old, new, other = tmp_path / ("a" * 64), tmp_path / ("b" * 64), tmp_path / "keep-me"
    for folder in (old, new, other):
        folder.mkdir()
        (folder / "f.bin").write_bytes(b"x")
    past = time.time() - 3600
    os.utime(old / "f.bin", (past, past))
    cache = UploadCache(tmp_path, max_age_s=600)
    assert cache.sweep(600) == 1 and not old.exists() and new.exists()
    assert cache.sweep() == 1 and not new.exists()
    assert (other / "f.bin").exists()  # not a Gradio cache entry: never touched


def test_upload_settings_are_whole_numbers_above_zero() -> None:
    from studio.config import Settings, SettingsError

    settings = Settings.from_env({"STUDIO_HOME": "/tmp/x"})
    assert (settings.upload_quota_mb, settings.upload_cache_minutes) == (500, 120)
    env = {"STUDIO_HOME": "/tmp/x", "STUDIO_UPLOAD_QUOTA_MB": "20", "STUDIO_UPLOAD_CACHE_MINUTES": "5"}
    assert Settings.from_env(env).upload_quota_mb == 20
    for name, value in (("STUDIO_UPLOAD_QUOTA_MB", "lots"), ("STUDIO_UPLOAD_CACHE_MINUTES", "0")):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({"STUDIO_HOME": "/tmp/x", name: value})
