"""Uploads into Gradio's cache (``GRADIO_TEMP_DIR``, ``<home>/cache/gradio`` for the studio): a quota per
user, a clear 400 for a part with no file name, and a cleaner that empties the cache at start and deletes
what is older than ``STUDIO_UPLOAD_CACHE_MINUTES`` on a timer.

``POST /gradio_api/upload`` writes whatever it is sent into the cache before any handler sees it; Gradio only
caps each file (``max_file_size``). :class:`UploadQuota` counts what each user's uploads hold there now
(an upload's ``Content-Length``, for as long as one of its files is still in the cache) and refuses an upload
that would take the user past ``STUDIO_UPLOAD_QUOTA_MB`` with 413, before a byte is written. An upload
without a ``Content-Length`` (chunked) is refused with 411.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse

from studio.ui.file_access import logged_in_user

UPLOAD_PATHS = ("/gradio_api/upload", "/gradio_api/upload/")
MB = 1024 * 1024
#: How long an answered upload counts even before Gradio has moved its files into the cache (seconds).
SETTLE_S = 60.0
#: Gradio names each cached file's folder by a sha256: the only folders the cleaner touches.
CACHE_ENTRY = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class Upload:
    """One upload of a user: its size as sent, the files it left in the cache, and when it came."""

    size: int
    at: float
    files: tuple[Path, ...] = ()
    done: bool = False

    def holds(self, now: float) -> bool:
        """In flight, just answered (Gradio moves the files after answering), or with a file still cached."""
        return not self.done or now - self.at < SETTLE_S or any(f.exists() for f in self.files)


class UploadQuota:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app: Any, quota_mb: int) -> None:
        self.app = app
        self.quota = quota_mb * MB
        self.quota_mb = quota_mb
        self._uploads: dict[str, list[Upload]] = {}
        self._lock = threading.Lock()

    def held(self, user: str) -> int:
        """Bytes ``user``'s uploads hold in the cache now (or are about to)."""
        with self._lock:
            return self._held(user.lower())

    def _held(self, user: str) -> int:
        now = time.time()
        kept = [u for u in self._uploads.get(user, []) if u.holds(now)]
        self._uploads[user] = kept
        return sum(u.size for u in kept)

    def _reserve(self, user: str, size: int) -> tuple[Upload | None, int]:
        """A ticket for ``size`` more bytes, or (None, bytes held) when that would pass the quota."""
        with self._lock:
            held = self._held(user)
            if held + size > self.quota:
                return None, held
            ticket = Upload(size=size, at=time.time())
            self._uploads.setdefault(user, []).append(ticket)
            return ticket, held

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in UPLOAD_PATHS:
            await self.app(scope, receive, send)
            return
        user = logged_in_user(scope)
        if user is None:  # Gradio answers 401
            await self.app(scope, receive, send)
            return
        length_text = Headers(scope=scope).get("content-length")
        if length_text is None or not length_text.isdigit():
            await PlainTextResponse("Upload refused: send a Content-Length.", status_code=411)(
                scope, receive, send
            )
            return
        length = int(length_text)
        ticket, held = self._reserve(user.lower(), length)
        if ticket is None:
            message = (
                f"Upload refused: your uploads would hold {(held + length) / MB:.0f} MB of the "
                f"{self.quota_mb} MB each user may keep in the upload cache (STUDIO_UPLOAD_QUOTA_MB). "
                "Older uploads are deleted after a while; try again later."
            )
            await PlainTextResponse(message, status_code=413)(scope, receive, send)
            return
        answer: dict[str, Any] = {"started": False, "status": 0, "body": b""}

        async def recording(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["started"], answer["status"] = True, message.get("status")
            elif message["type"] == "http.response.body" and answer["status"] == 200:
                answer["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, receive, recording)
        except TypeError:  # Gradio's upload route on a part without a file name ("not a GradioUploadFile")
            if answer["started"]:
                raise
            refusal = "Upload refused: every file needs a file name (a multipart part with filename=...)."
            await PlainTextResponse(refusal, status_code=400)(scope, receive, send)
        finally:
            ticket.files = _paths(answer["body"]) if answer["status"] == 200 else ()
            ticket.size = ticket.size if answer["status"] == 200 else 0
            ticket.at, ticket.done = time.time(), True


def _paths(body: bytes) -> tuple[Path, ...]:
    """The cached files an upload's answer lists."""
    try:
        names = json.loads(body or b"[]")
    except ValueError:
        return ()
    return tuple(Path(n) for n in names if isinstance(n, str)) if isinstance(names, list) else ()


class UploadCache:
    """Gradio's cache folder: emptied at start, then swept of entries older than ``max_age_s`` every
    ``period_s`` seconds by a daemon thread."""

    def __init__(self, folder: Path, max_age_s: float, period_s: float | None = None) -> None:
        self.folder = Path(folder)
        self.max_age_s = max_age_s
        self.period_s = period_s if period_s is not None else min(max(max_age_s / 4, 5.0), 600.0)
        self._stop = threading.Event()

    def entries(self) -> list[Path]:
        """The cache's entries (folders named by a sha256; nothing else in the folder is touched)."""
        if not self.folder.is_dir():
            return []
        return [p for p in self.folder.iterdir() if p.is_dir() and CACHE_ENTRY.match(p.name)]

    def sweep(self, older_than_s: float | None = None) -> int:
        """Delete entries last changed more than ``older_than_s`` ago (all when None); returns how many."""
        limit = None if older_than_s is None else time.time() - older_than_s
        removed = 0
        for entry in self.entries():
            try:
                newest = max((p.stat().st_mtime for p in entry.rglob("*")), default=entry.stat().st_mtime)
            except OSError:
                continue
            if limit is None or newest < limit:
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        return removed

    def start(self) -> UploadCache:
        """Empty the cache now and sweep it on a timer until :meth:`stop`."""
        self.sweep()
        threading.Thread(target=self._run, name="upload-cache-sweeper", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.period_s):
            self.sweep(self.max_age_s)
