"""Web sessions: who a request's cookie stands for, and ending a session when its account changes.

Gradio keeps its login tokens in memory (``app.tokens``: token → username; the browser holds the token in
the ``access-token[-unsecure]-<cookie_id>`` cookie) and resolves every request's user from there
(``request.username``). :class:`SessionGuard`, an ASGI middleware in front of every route, keeps that map
honest:

- **Sign-in.** For ``POST /login`` it puts the client's address in :data:`LOGIN_ATTEMPT` (the ``auth=`` check
  reads it: failures are counted per name *and* address) and, when the login succeeds, stores the token
  under the account's stored name (lowercase: ``MIA`` signs in as ``mia``) with the account's session
  epoch.
- **Every later request** (HTTP or websocket) with a token cookie: the token's account must still exist, be
  enabled and have the same session epoch (it moves on a password reset, a disable, a role taken away, the
  user's own password change). Otherwise the token is removed from ``app.tokens`` before Gradio sees the
  request, which Gradio then treats as logged out (401, or the sign-in page). Tokens of a server before a
  restart are gone anyway (memory only).

So anything behind this middleware that reads ``request.username``, or ``app.tokens`` by the cookie, gets the
stored name of an account whose session still stands, or nothing.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

import anyio
from starlette.requests import cookie_parser

from studio.services.logins import SignedIn
from studio.services.users import UserService

#: The sign-in being answered now (set for ``POST /login`` only).
LOGIN_ATTEMPT: contextvars.ContextVar[LoginAttempt | None] = contextvars.ContextVar(
    "studio_login_attempt", default=None
)
LOGIN_PATHS = ("/login", "/login/")


@dataclass
class LoginAttempt:
    """One ``POST /login``: the client's address, and the account once the check lets it in."""

    client: str | None
    signed_in: SignedIn | None = None


def client_address(scope: dict[str, Any]) -> str | None:
    """The request's client address (behind a reverse proxy: what uvicorn took from ``X-Forwarded-For``,
    which it trusts from ``FORWARDED_ALLOW_IPS``, by default 127.0.0.1)."""
    client = scope.get("client")
    return str(client[0])[:64] if client else None


def session_tokens(scope: dict[str, Any], cookie_id: str) -> list[str]:
    """The Gradio login tokens the request's cookies carry (secure and plain cookie)."""
    cookies: dict[str, str] = {}
    for key, value in scope.get("headers") or []:
        if key == b"cookie":
            cookies.update(cookie_parser(value.decode("latin-1")))
    names = (f"access-token-{cookie_id}", f"access-token-unsecure-{cookie_id}")
    return [cookies[n] for n in names if cookies.get(n)]


def _token_set(headers: list[tuple[bytes, bytes]], cookie_id: str) -> str | None:
    """The login token a response sets (from its ``Set-Cookie`` headers)."""
    prefixes = (f"access-token-{cookie_id}=".encode(), f"access-token-unsecure-{cookie_id}=".encode())
    for key, value in headers:
        if key.lower() == b"set-cookie" and value.startswith(prefixes):
            return value.split(b"=", 1)[1].split(b";", 1)[0].strip(b'"').decode("latin-1")
    return None


class SessionGuard:
    """ASGI middleware: sign-ins record their account and epoch; requests of an ended session are logged out
    (see the module's docstring). Put it before any middleware that reads the user from the cookie."""

    def __init__(self, app: Any, users: UserService) -> None:
        self.app = app
        self.users = users
        self.sessions: dict[str, tuple[int, int]] = {}  # token → (user id, session epoch at sign-in)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        gradio_app = scope.get("app")
        tokens: dict[str, str] | None = getattr(gradio_app, "tokens", None)
        cookie_id: str | None = getattr(gradio_app, "cookie_id", None)
        if scope["type"] not in ("http", "websocket") or tokens is None or cookie_id is None:
            await self.app(scope, receive, send)
            return
        for token in session_tokens(scope, cookie_id):
            if token in tokens:
                await self._check(tokens, token)
        if scope["type"] == "http" and scope.get("method") == "POST" and scope.get("path") in LOGIN_PATHS:
            await self._sign_in(scope, receive, send, tokens, cookie_id)
            return
        await self.app(scope, receive, send)

    async def _check(self, tokens: dict[str, str], token: str) -> None:
        """Keep ``token`` under its account's stored name while its session stands; else drop it."""
        started = self.sessions.get(token)
        name = await anyio.to_thread.run_sync(self.users.logins.session_user, *started) if started else None
        if name is None:
            tokens.pop(token, None)
            self.sessions.pop(token, None)
        else:
            tokens[token] = name

    async def _sign_in(
        self, scope: dict[str, Any], receive: Any, send: Any, tokens: dict[str, str], cookie_id: str
    ) -> None:
        attempt = LoginAttempt(client=client_address(scope))
        reset = LOGIN_ATTEMPT.set(attempt)

        async def record_session(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message.get("status") == 200:
                token = _token_set(list(message.get("headers") or []), cookie_id)
                signed = attempt.signed_in
                if token and signed is not None:
                    tokens[token] = signed.username
                    self.sessions[token] = (signed.user_id, signed.session_epoch)
                elif token:  # a login this guard did not see checked: no session
                    tokens.pop(token, None)
                self._forget_ended(tokens)
            await send(message)

        try:
            await self.app(scope, receive, record_session)
        finally:
            LOGIN_ATTEMPT.reset(reset)

    def _forget_ended(self, tokens: dict[str, str]) -> None:
        """Drop records of tokens Gradio no longer holds (logged out)."""
        for token in [t for t in self.sessions if t not in tokens]:
            del self.sessions[token]


def request_client(request: Any) -> str | None:
    """The client address of a Gradio event's request (``gr.Request``), as :func:`client_address` reads
    it for a sign-in."""
    client = getattr(request, "client", None)
    host = getattr(client, "host", None)
    return str(host)[:64] if host else None
