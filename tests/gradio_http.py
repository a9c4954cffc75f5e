"""Call a running Gradio app the way its browser page does: the login form, then events by ``fn_index``
(queued events through ``/gradio_api/queue/join`` + the SSE stream, unqueued ones through
``/gradio_api/run/predict``). Unlike ``gradio_client`` this reaches private endpoints too, which is what an
attacker with a login would do. Every wait is bounded.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Outcome:
    """What one event returned: ``ok`` with ``data``, or not ok with the ``error`` text (or HTTP status)."""

    ok: bool
    data: list[Any] | None
    error: str
    status: int = 200


class GradioSession:
    """One browser-like session (cookies + a session hash) against ``url``; use as a context manager."""

    def __init__(self, url: str, timeout: float = 120.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session_hash = secrets.token_hex(6)
        self.http = httpx.Client(base_url=self.url, timeout=timeout, follow_redirects=False)
        self._config: dict[str, Any] | None = None

    def __enter__(self) -> GradioSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def login(self, username: str, password: str) -> httpx.Response:
        """POST the login form; on success the session cookie is kept."""
        return self.http.post("/login", data={"username": username, "password": password})

    def config(self) -> dict[str, Any]:
        response = self.http.get("/config")
        response.raise_for_status()
        return response.json()

    def upload(self, name: str, content: bytes) -> str:
        """Upload a file as the page does; returns the server path to pass as FileData."""
        response = self.http.post("/gradio_api/upload", files={"files": (name, content)})
        response.raise_for_status()
        return response.json()[0]

    def call(
        self,
        fn_index: int,
        data: list[Any],
        *,
        queued: bool = True,
        event_data: Any = None,
        on_message: Callable[[dict[str, Any]], None] | None = None,
    ) -> Outcome:
        """Run event ``fn_index`` with ``data`` (one value per input component, State ones as None);
        ``on_message`` sees each message of the event's stream (``process_starts``, ``progress``…)."""
        body = {
            "data": data,
            "fn_index": fn_index,
            "session_hash": self.session_hash,
            "event_data": event_data,
            "trigger_id": None,
        }
        if not queued:
            response = self.http.post("/gradio_api/run/predict", json=body)
            if response.status_code != 200:
                return Outcome(False, None, _error_text(response), response.status_code)
            return Outcome(True, response.json().get("data"), "")
        joined = self.http.post("/gradio_api/queue/join", json=body)
        if joined.status_code != 200:
            return Outcome(False, None, _error_text(joined), joined.status_code)
        event_id = joined.json()["event_id"]
        return self._await(event_id, on_message)

    def call_named(self, api_name: str, values: dict[str, Any], **kwargs: Any) -> Outcome:
        """Run the endpoint named ``api_name``; inputs by component label, others at their defaults."""
        config = self._config or self.config()
        self._config = config
        dep = next(d for d in config["dependencies"] if d.get("api_name") == api_name)
        components = {c["id"]: c for c in config["components"]}
        data = []
        for cid in dep["inputs"]:
            component = components[cid]
            label = component["props"].get("label")
            if component["type"] == "state":
                data.append(None)
            else:
                data.append(values.get(label, component["props"].get("value")))
        return self.call(dep["id"], data, queued=dep.get("queue") is not False, **kwargs)

    def _await(self, event_id: str, on_message: Callable[[dict[str, Any]], None] | None = None) -> Outcome:
        deadline = time.monotonic() + self.timeout
        params = {"session_hash": self.session_hash}
        with self.http.stream("GET", "/gradio_api/queue/data", params=params) as stream:
            if stream.status_code != 200:
                return Outcome(False, None, f"queue/data answered {stream.status_code}", stream.status_code)
            for line in stream.iter_lines():
                if time.monotonic() > deadline:
                    return Outcome(False, None, "timed out waiting for the event", 504)
                if not line.startswith("data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("event_id") not in (None, event_id):
                    continue
                if on_message is not None:
                    on_message(message)
                kind = message.get("msg")
                if kind == "process_completed":
                    output = message.get("output") or {}
                    if message.get("success"):
                        return Outcome(True, output.get("data"), "")
                    return Outcome(False, None, str(output.get("error") or output))
                if kind == "unexpected_error":
                    return Outcome(False, None, str(message.get("message")))
        return Outcome(False, None, "the event stream closed without a result", 502)


def _error_text(response: httpx.Response) -> str:
    try:
        payload = response.json()
    except ValueError:
        return response.text[:500]
    return str(payload.get("detail") or payload.get("error") or payload)
