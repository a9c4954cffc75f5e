"""HTTP guards in front of Gradio's routes (ASGI middleware, in ``launch_options``'s list):

- :class:`OriginGuard`: a browser request from another site is refused (403) before it reaches a route. A
  request whose ``Origin`` is not this site's, any non-GET request that ``Sec-Fetch-Site`` marks as from
  another site, and a ``GET /logout`` that is not a top-level navigation of this site (an ``<img
  src=/logout>`` in a page, a link on another site). Clients that send neither header (``gradio_client``,
  curl) pass: they hold no browser cookies another site could ride on. This site is the ``Host`` header: a
  reverse proxy must pass it on unchanged (nginx: ``proxy_set_header Host $host``).
- :class:`QueueOwners`: a Gradio session hash (and the event ids made in it) belongs to the logged-in user
  who used it first; another user, or a caller with no login, who names it is answered 404, so results,
  heartbeats, cancels and streams reach only the session that asked.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse

from studio.ui.file_access import logged_in_user

API = "/gradio_api"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": "80", "https": "443"}


# ------------------------------------------------------------------------------------------------ origin


def site_of(headers: Headers) -> str:
    """``host[:port]`` of this site as the browser addressed it: the ``Host`` header, which a page cannot
    set (``X-Forwarded-Host`` it can, with Gradio's permissive CORS, so it is not trusted here)."""
    return (headers.get("host") or "").lower()


def same_origin(origin: str, headers: Headers) -> bool:
    """Whether an ``Origin`` header names this site (scheme aside: TLS may end at a proxy)."""
    parts = urlsplit(origin.strip().lower())
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return False  # "null" (a sandboxed frame, a file: page) and anything odd
    site = site_of(headers)
    default = DEFAULT_PORTS[parts.scheme]
    for candidate in (parts.netloc, f"{parts.netloc}:{default}"):
        if site in (candidate, candidate.removesuffix(f":{default}")):
            return True
    return False


def cross_site_refusal(method: str, path: str, headers: Headers) -> str | None:
    """Why a request must be refused as coming from another site, or None to let it through."""
    origin = headers.get("origin")
    fetch_site = headers.get("sec-fetch-site")
    if origin is not None and not same_origin(origin, headers):
        return "Refused: this request came from another site."
    if method not in SAFE_METHODS and fetch_site not in (None, "same-origin", "none"):
        return "Refused: this request came from another site."
    if path.rstrip("/") == "/logout":
        destination = headers.get("sec-fetch-dest")
        if fetch_site not in (None, "same-origin", "none") or destination not in (None, "document"):
            return "Refused: log out with the Log out button."
    return None


class OriginGuard:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            why = cross_site_refusal(scope["method"], scope.get("path", ""), Headers(scope=scope))
            if why is not None:
                await PlainTextResponse(why, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


# ------------------------------------------------------------------------------------------------ queue


class Owners:
    """Session hashes and event ids → the user who made them (the oldest forgotten past ``limit``)."""

    def __init__(self, limit: int = 200_000) -> None:
        self._owner: OrderedDict[str, str] = OrderedDict()
        self._limit = limit

    def claim(self, key: str, user: str | None) -> bool:
        """True when ``user`` may use ``key``; a key nobody holds yet becomes ``user``'s (when logged in)."""
        owner = self._owner.get(key)
        if owner is None:
            if user:
                self._owner[key] = user.lower()
                if len(self._owner) > self._limit:
                    self._owner.popitem(last=False)
            return True
        return user is not None and owner == user.lower()


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def named_keys(method: str, path: str, query: str, body: bytes) -> list[str]:
    """The session hashes and event ids a Gradio API request names (empty: it names none)."""
    if not path.startswith(API + "/"):
        return []
    rest = path[len(API) + 1 :].strip("/").split("/")
    keys: list[str] = []
    if rest[0] == "queue" and rest[1:] == ["data"]:
        keys += parse_qs(query).get("session_hash", [])
    elif rest[0] == "heartbeat" and len(rest) == 2:
        keys.append(rest[1])
    elif rest[0] == "stream" and len(rest) >= 2:
        keys.append(rest[1])  # an event id (POST) or a session hash (GET media streams)
    elif rest[0] == "call" and method == "GET" and len(rest) >= 3:
        keys.append(rest[-1])  # an event id; Gradio reads it as a session hash when no event has it
    if method == "POST":
        payload = _json_body(body)
        for name in ("session_hash", "event_id"):
            if isinstance(payload.get(name), str) and payload[name]:
                keys.append(payload[name])
    return keys


def _reads_body(method: str, path: str) -> bool:
    return method == "POST" and path.startswith(API + "/") and not path.startswith(f"{API}/upload")


class QueueOwners:
    """ASGI middleware: see the module docstring."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.owners = Owners()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(API + "/"):
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        body = b""
        if _reads_body(method, path):
            body = await _read_all(receive)
            receive = _replay(body, receive)
        query = scope.get("query_string", b"").decode("latin-1")
        user = logged_in_user(scope)
        for key in named_keys(method, path, query, body):
            if not self.owners.claim(key, user):
                await PlainTextResponse("Unknown session.", status_code=404)(scope, receive, send)
                return
        if method == "POST" and user and (path.endswith("/queue/join") or f"{API}/call/" in path):
            send = self._claiming_event_ids(send, user)
        await self.app(scope, receive, send)

    def _claiming_event_ids(self, send: Any, user: str) -> Any:
        """``send`` that records the event id a join or call answers with as ``user``'s."""
        state: dict[str, Any] = {"ok": False, "body": b""}

        async def wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                state["ok"] = message.get("status") == 200
            elif message["type"] == "http.response.body" and state["ok"]:
                state["body"] += message.get("body", b"")
                if not message.get("more_body"):
                    event_id = _json_body(state["body"]).get("event_id")
                    if isinstance(event_id, str) and event_id:
                        self.owners.claim(event_id, user)
            await send(message)

        return wrapped


async def _read_all(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Any) -> Any:
    """``receive`` that hands the app the body read already, then waits on the connection as before."""
    sent = False

    async def replay() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
