"""The sign-in page: the studio's own login check, and telling a locked-out (or disabled) user so.

Gradio's login form answers any refused login with a fixed "Incorrect Credentials". A lockout is not a typo:
the user must hear that the account is locked and for how long, or they keep trying the right password. The
check raises an HTTP 400 whose ``detail`` says so (the form still takes it as a refusal), and a small script
in the page puts that ``detail`` in place of the fixed text.

What the page reveals: only a lockout (which names with no account get too, after as many failures, see
:mod:`studio.services.logins`), a disabled account (only after the right password) and a username over the
length limit. A wrong password and an unknown name read the same, "Incorrect Credentials".

The check counts failures per name and client address: the address comes from the ``POST /login`` request
through :data:`studio.ui.sessions.LOGIN_ATTEMPT`, and the signed-in account goes back the same way (the
session guard stores the session under the account's stored name).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import HTTPException

from studio.errors import AccountDisabledError, AccountLockedError, AuthenticationError, ValidationError
from studio.services.users import UserService
from studio.ui.sessions import LOGIN_ATTEMPT

#: Put the server's reason for a refused login (a lockout) in place of the login form's fixed text.
LOGIN_SCRIPT = """
(() => {
  const fixed = new WeakMap();
  function show(text) {
    let tries = 0;
    const tick = () => {
      const line = document.querySelector("p.creds");
      if (!line) { if (tries++ < 120) requestAnimationFrame(tick); return; }
      if (!fixed.has(line)) fixed.set(line, line.textContent);
      line.textContent = text === null ? fixed.get(line) : text;
      line.dataset.studioReason = text === null ? "" : "locked";
    };
    tick();
  }
  const original = window.fetch.bind(window);
  window.fetch = async (input, init) => {
    const response = await original(input, init);
    try {
      const url = new URL(typeof input === "string" ? input : input.url, location.href);
      const post = ((init && init.method) || (input && input.method) || "GET").toUpperCase() === "POST";
      if (post && /\\/login\\/?$/.test(url.pathname) && response.status === 400) {
        const body = await response.clone().json();
        const reason = typeof body.detail === "string" ? body.detail : "";
        show(reason && !/^Incorrect credentials/i.test(reason) ? reason : null);
      }
    } catch (error) { /* the form's own message stays */ }
    return response;
  };
})();
"""


def sentence(text: str) -> str:
    """A message as a sentence: capital first letter, full stop."""
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "." if text else text


def studio_login(users: UserService) -> Callable[[str, str], bool]:
    """Gradio's ``auth=`` check: True lets the user in; a lockout, a disabled account or a username over the
    limit is refused with its reason (HTTP 400, as Gradio refuses); anything else is Gradio's "Incorrect
    credentials". Run inside ``POST /login`` (see :mod:`studio.ui.sessions`) it counts failures per client
    address and hands the signed-in account back; elsewhere (tests) the address is this machine's."""

    def check(username: str, password: str) -> bool:
        attempt = LOGIN_ATTEMPT.get()
        try:
            signed = users.logins.sign_in(username, password, attempt.client if attempt else None)
        except (AccountLockedError, AccountDisabledError, ValidationError) as error:
            raise HTTPException(status_code=400, detail=sentence(str(error))) from None
        except AuthenticationError:
            return False
        if attempt is not None:
            attempt.signed_in = signed
        return True

    return check


class LoginPageScript:
    """ASGI middleware: adds :data:`LOGIN_SCRIPT` to the HTML of the app's pages (the sign-in page is the
    app's ``/`` before login). Other responses pass untouched."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.tag = f"<script>{LOGIN_SCRIPT}</script></head>".encode()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("method") != "GET" or scope.get("path") not in ("/", ""):
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def inject(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                html = headers.get(b"content-type", b"").startswith(b"text/html")
                if not html or b"content-encoding" in headers:
                    start["pass"] = True
                    await send(message)
                    return
                start.update(message)
                return
            if start.get("pass") or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks).replace(b"</head>", self.tag, 1)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, inject)
