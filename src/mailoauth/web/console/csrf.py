"""CSRF protection: every state-changing request carries a token bound to the session.

The synchronizer-token pattern (OWASP CSRF cheat sheet): each session has a random
secret (:class:`~mailoauth.store.WebSession`'s ``csrf_secret``); pages embed it in every
form as the hidden field ``csrf_token`` and in ``<meta name="csrf-token">`` for scripts,
which send it as the ``X-CSRF-Token`` header. The embedded token is *masked*: a fresh
random pad and the secret XOR the pad, so it differs on every page and a compressed
response cannot leak the secret byte by byte (BREACH).

:class:`CsrfMiddleware` checks **every** request that is not GET, HEAD or OPTIONS, outside
:data:`EXEMPT_PREFIXES` (the REST API authenticates with keys, not cookies), before any
route runs: a missing or wrong token is answered ``403`` with a page that says why, so a
route added later is covered without doing anything. The forms used before a login
(:data:`ANONYMOUS_FORMS`: login and setup) are checked against a pre-session secret in the
cookie ``mailoauth_csrf`` instead (double submit; ``SameSite=Strict``); such a token is
good for nothing else. The body is read once here (at most :data:`MAX_BODY` bytes, else
``413``) and handed on to the route unchanged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Callable
from typing import Final
from urllib.parse import parse_qsl

from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mailoauth.web.console.sessions import current_session, new_secret
from mailoauth.web.console.state import console_of

__all__ = [
    "ANONYMOUS_FORMS",
    "EXEMPT_PREFIXES",
    "FIELD",
    "HEADER",
    "MAX_BODY",
    "PRE_COOKIE",
    "CsrfMiddleware",
    "csrf_token",
    "mask",
    "matches",
]

FIELD: Final = "csrf_token"
HEADER: Final = "X-CSRF-Token"
PRE_COOKIE: Final = "mailoauth_csrf"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
EXEMPT_PREFIXES: Final = ("/api/",)
ANONYMOUS_FORMS: Final = frozenset({"/login", "/setup"})
MAX_BODY: Final = 1 << 20
FORM_TYPE: Final = "application/x-www-form-urlencoded"

#: Renders a refusal: (request, status, title, message) → the response to send.
Refusal = Callable[[Request, int, str, str], Response]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mask(secret: str) -> str:
    """A token for ``secret`` that differs every time: ``pad ‖ (pad XOR secret)``."""
    raw = _unb64(secret)
    pad = secrets.token_bytes(len(raw))
    return _b64(pad + bytes(a ^ b for a, b in zip(pad, raw, strict=True)))


def matches(secret: str, token: str) -> bool:
    """Whether ``token`` (from :func:`mask`) carries ``secret``; constant time."""
    try:
        raw, data = _unb64(secret), _unb64(token)
    except (binascii.Error, ValueError):
        return False
    if len(data) != 2 * len(raw) or not raw:
        return False
    pad, masked = data[: len(raw)], data[len(raw) :]
    return hmac.compare_digest(bytes(a ^ b for a, b in zip(pad, masked, strict=True)), raw)


def csrf_token(connection: HTTPConnection) -> tuple[str, str | None]:
    """The masked token for pages of this request, and a new pre-session secret to set
    as the ``mailoauth_csrf`` cookie (None: nothing to set). Blocking (session lookup)."""
    session = current_session(connection)
    if session is not None:
        return mask(session.csrf_secret), None
    pre = connection.cookies.get(PRE_COOKIE)
    if pre and _well_formed(pre):
        return mask(pre), None
    pre = new_secret()
    return mask(pre), pre


def _well_formed(secret: str) -> bool:
    try:
        return len(_unb64(secret)) == 32
    except (binascii.Error, ValueError):
        return False


def _token_of(request: Request, body: bytes) -> str | None:
    if token := request.headers.get(HEADER):
        return token
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM_TYPE:
        return None
    fields = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
    return next((value for key, value in fields if key == FIELD), None)


def refusal_reason(request: Request, body: bytes) -> str | None:
    """Why this unsafe request is refused, or None when its token is good (blocking)."""
    token = _token_of(request, body)
    session = current_session(request)
    if not token:
        return (
            "the request carried no security token (CSRF token), so it may come from "
            "another site; go back, reload the page and submit the form again"
        )
    if session is not None and matches(session.csrf_secret, token):
        return None
    if request.url.path in ANONYMOUS_FORMS:
        pre = request.cookies.get(PRE_COOKIE)
        if pre and matches(pre, token):
            return None
    if session is None and request.url.path not in ANONYMOUS_FORMS:
        return "you are not logged in, or your session has ended; log in and try again"
    return (
        "the form's security token (CSRF token) does not match your session: the page "
        "may be from before your last login, or from another site; reload it and try again"
    )


class CsrfMiddleware:
    """ASGI middleware: refuse unsafe requests without a good token (module docstring)."""

    def __init__(self, app: ASGIApp, refuse: Refusal) -> None:
        self.app = app
        self.refuse = refuse

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in SAFE_METHODS
            or scope["path"].startswith(EXEMPT_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        console_of(request)  # fail loudly if the console is not mounted
        body = await _read(receive)
        if body is None:
            text = f"the request is larger than {MAX_BODY // 1024} KiB"
            response = self.refuse(request, 413, "Request too large", text)
        elif reason := await run_in_threadpool(refusal_reason, request, body):
            response = self.refuse(request, 403, "Request refused", reason)
        else:
            await self.app(scope, _replay(body, receive), send)
            return
        await response(scope, receive, send)


async def _read(receive: Receive) -> bytes | None:
    """The whole body, or None when it is over :data:`MAX_BODY`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
