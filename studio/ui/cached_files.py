"""Files in Gradio's cache, under links that name no server path (issue 16).

Gradio copies each file or PIL image a handler returns into its cache (``GRADIO_TEMP_DIR``,
``<home>/cache/gradio``) and sends ``{"path": <cached path>, "url": "<root>/gradio_api/file=<cached path>"}``;
its upload route answers with the cached paths, which the page then sends back as each file's path. Both
showed the server's data folder.

:class:`CachedFiles` gives each (user, cached file) an unguessable token; its link
``/studio/files/cached/<token>/<name>`` is answered (by :class:`~studio.ui.file_access.StudioFiles`) only to
that user, and only while the file is in the cache (the cache is emptied at every start and swept on a timer:
``STUDIO_UPLOAD_CACHE_MINUTES``). :class:`CachedLinks` puts these links where paths were:

- an upload's answer: each cached path becomes its uploader's link. The page shows an uploaded file as
  ``/gradio_api/file=<link>``, which ``StudioFiles`` answers like the link itself;
- an event's inputs: a link the caller holds becomes the cached path again before Gradio reads it (a link
  of another user is left as it is, and Gradio refuses it as a file outside its upload folder);
- an event's outputs: every file with a local path becomes the caller's link (``path`` and ``url`` both),
  in the queue's messages and in ``/run`` answers alike (``Blocks.process_api``, wrapped once per app on
  its first request).

Files the studio links itself (images, training images, exports, templates, dataset images:
:mod:`studio.ui.file_access`) are ``http(s)`` links already and pass unchanged.
"""

from __future__ import annotations

import inspect
import json
import os
import secrets
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from gradio_client.utils import is_file_obj_with_meta, is_http_url_like, traverse
from starlette.datastructures import MutableHeaders

from studio.ui.file_access import GRADIO_FILE, ROUTE, logged_in_user
from studio.ui.upload_guard import UPLOAD_PATHS

KIND = "cached"
PREFIX = f"{ROUTE}/{KIND}/"


class CachedFiles:
    """Tokens for cached files, each bound to one user (the oldest forgotten past ``limit``)."""

    def __init__(self, limit: int = 200_000) -> None:
        self._files: OrderedDict[str, tuple[str, str]] = OrderedDict()  # token → (user, path)
        self._tokens: dict[tuple[str, str], str] = {}  # (user, path) → token
        self._limit = limit
        self._lock = threading.Lock()

    def link(self, user: str | None, path: str) -> str:
        """``/studio/files/cached/<token>/<name>`` for ``user`` (the same link each time for one file)."""
        key = ((user or "").lower(), os.path.abspath(path))
        with self._lock:
            token = self._tokens.get(key)
            if token is None:
                token = secrets.token_urlsafe(24)
                self._files[token] = key
                self._tokens[key] = token
                if len(self._files) > self._limit:
                    _, oldest = self._files.popitem(last=False)
                    self._tokens.pop(oldest, None)
        return f"{PREFIX}{token}/{quote(Path(path).name, safe='')}"

    def path_for(self, token: str, user: str | None) -> Path | None:
        """The cached file behind ``token`` when ``user`` holds it and it is still there; else None."""
        with self._lock:
            held = self._files.get(token)
        if held is None or not user or held[0] != user.lower():
            return None
        path = Path(held[1])
        return path if path.is_file() else None

    def held_path(self, value: str, user: str | None) -> str | None:
        """The cached path a link (relative, absolute, or after ``/gradio_api/file=``) names for ``user``."""
        start = value.find(PREFIX)
        if start < 0:
            return None
        token = unquote(value[start + len(PREFIX) :].split("/", 1)[0])
        path = self.path_for(token, user)
        return str(path) if path is not None else None

    def inward(self, data: Any, user: str | None) -> Any:
        """An event's inputs with the links ``user`` holds turned back into cached paths."""

        def back(file: dict[str, Any]) -> dict[str, Any]:
            path = self.held_path(file["path"], user)
            return {**file, "path": path, "url": None} if path is not None else file

        return traverse(data, back, is_file_obj_with_meta)

    def outward(self, data: Any, user: str | None) -> Any:
        """An event's outputs with every file that has a local path named by ``user``'s link instead."""

        def linked(file: dict[str, Any]) -> dict[str, Any]:
            path = file["path"]
            if file.get("is_stream") or is_http_url_like(path) or not os.path.isabs(path):
                return file
            url = file.get("url") if isinstance(file.get("url"), str) else ""
            root = url[: url.index(GRADIO_FILE)] if GRADIO_FILE in url else ""
            link = root + self.link(user, path)
            return {**file, "path": link, "url": link}

        return traverse(data, linked, is_file_obj_with_meta)


def _username(request: Any) -> str | None:
    if isinstance(request, list):
        request = request[0] if request else None
    name = getattr(request, "username", None)
    return name if isinstance(name, str) and name else None


def wrap_process_api(blocks: Any, cached: CachedFiles) -> None:
    """Make ``blocks.process_api`` (every event, queued or not) take links in and give links out."""
    original = blocks.process_api
    if getattr(original, "studio_cached_files", None) is cached:
        return
    signature = inspect.signature(original)

    async def process_api(*args: Any, **kwargs: Any) -> dict[str, Any]:
        bound = signature.bind(*args, **kwargs)
        user = _username(bound.arguments.get("request"))
        bound.arguments["inputs"] = cached.inward(bound.arguments.get("inputs"), user)
        result = await original(*bound.args, **bound.kwargs)
        if isinstance(result, dict) and "data" in result:
            result["data"] = cached.outward(result["data"], user)
        return result

    process_api.studio_cached_files = cached  # type: ignore[attr-defined]
    blocks.process_api = process_api


class CachedLinks:
    """ASGI middleware: upload answers carry links, and the app's events take and give links (module
    docstring). Place it outside :class:`~studio.ui.upload_guard.UploadQuota`, which reads the paths."""

    def __init__(self, app: Any, cached: CachedFiles) -> None:
        self.app = app
        self.cached = cached
        self._installed = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if not self._installed:
            blocks = getattr(scope.get("app"), "blocks", None)
            if blocks is not None:
                wrap_process_api(blocks, self.cached)
                self._installed = True
        if scope.get("method") != "POST" or scope.get("path") not in UPLOAD_PATHS:
            await self.app(scope, receive, send)
            return
        user = logged_in_user(scope)
        held: dict[str, Any] = {"start": None, "body": b""}

        async def linking(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message.get("status") == 200:
                held["start"] = message  # sent with the rewritten body
                return
            if message["type"] == "http.response.body" and held["start"] is not None:
                held["body"] += message.get("body", b"")
                if message.get("more_body"):
                    return
                body = self._linked_answer(held["body"], user)
                start = held["start"]
                headers = MutableHeaders(raw=list(start.get("headers", [])))
                headers["content-length"] = str(len(body))
                await send({**start, "headers": headers.raw})
                await send({"type": "http.response.body", "body": body})
                return
            await send(message)

        await self.app(scope, receive, linking)

    def _linked_answer(self, body: bytes, user: str | None) -> bytes:
        """An upload's answer (a JSON list of cached paths) with each path as ``user``'s link."""
        try:
            paths = json.loads(body or b"null")
        except ValueError:
            return body
        if not isinstance(paths, list):
            return body
        linked = [self.cached.link(user, p) if isinstance(p, str) and os.path.isabs(p) else p for p in paths]
        return json.dumps(linked).encode()
