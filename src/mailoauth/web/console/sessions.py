"""Console sessions: a random cookie, a server-side row, idle and absolute expiry.

* The cookie ``mailoauth_session`` holds 256 random bits; the store keeps only their
  SHA-256 (:func:`digest`, the same digest ``web/authorize.py`` binds an authorization
  to), so a copy of the database cannot be replayed as a login.
* Cookie flags: ``HttpOnly`` (no script reads it), ``SameSite=Lax`` (not sent with
  cross-site POSTs; CSRF tokens do the rest, :mod:`.csrf`), ``Path=/``, and ``Secure``
  when the public URL is https.
* A session ends :data:`IDLE` (12 h) after its last use, and :data:`LIFETIME` (7 days)
  after the login whatever happens; logging out deletes the row. A login always starts a
  new session (no fixation), and ends expired ones.
* Each session has its own CSRF secret (:mod:`.csrf`).

:func:`current_session` is looked up once per request and kept in the request's state
(the CSRF middleware and the route share it); it blocks on the store, so call it from a
worker thread, as FastAPI does for plain ``def`` routes and dependencies.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Final

from fastapi import Request
from fastapi.responses import Response
from starlette.requests import HTTPConnection

from mailoauth.store import WebSession
from mailoauth.web.console.state import console_of

__all__ = [
    "COOKIE",
    "IDLE",
    "LIFETIME",
    "LoginRequired",
    "current_session",
    "digest",
    "end_session",
    "require_admin",
    "start_session",
]

COOKIE: Final = "mailoauth_session"
IDLE: Final = timedelta(hours=12)
LIFETIME: Final = timedelta(days=7)
#: ``last_seen_at`` is written at most this often (one write per minute, not per click).
TOUCH_AFTER: Final = timedelta(minutes=1)
_STATE_KEY: Final = "mailoauth_console_session"
_NONE: Final = object()


class LoginRequired(Exception):  # noqa: N818 - reads as what the request needs
    """The request needs a logged-in admin (answered by a redirect to /login or a 403)."""


def digest(value: str) -> str:
    """SHA-256, hex: how session ids are kept."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """256 random bits, base64url: a session id or a CSRF secret."""
    return secrets.token_urlsafe(32)


def current_session(connection: HTTPConnection) -> WebSession | None:
    """The logged-in session of this request, or None (no, unknown or expired cookie).

    An expired session is deleted; a live one has ``last_seen_at`` moved on (at most once
    a minute). Blocking: call from a worker thread."""
    state = connection.scope.setdefault("state", {})
    cached = state.get(_STATE_KEY)
    if cached is not None:
        return None if cached is _NONE else cached
    session = _lookup(connection)
    state[_STATE_KEY] = _NONE if session is None else session
    return session


def _lookup(connection: HTTPConnection) -> WebSession | None:
    token = connection.cookies.get(COOKIE)
    if not token or len(token) > 128:
        return None
    console = console_of(connection)
    store, now = console.store, console.clock()
    id_hash = digest(token)
    session = store.get_web_session(id_hash)
    if session is None:
        return None
    if now >= session.expires_at or now - session.last_seen_at >= IDLE:
        store.delete_web_session(id_hash)
        return None
    if now - session.last_seen_at >= TOUCH_AFTER:
        store.touch_web_session(id_hash, now=now)
    return session


def start_session(request: Request, response: Response, admin: str) -> WebSession:
    """Log ``admin`` in: a new session row and its cookie on ``response``."""
    console = console_of(request)
    store, now = console.store, console.clock()
    token = new_secret()
    session = WebSession(
        id_hash=digest(token),
        admin=admin,
        csrf_secret=new_secret(),
        created_at=now,
        last_seen_at=now,
        expires_at=now + LIFETIME,
    )
    store.prune_web_sessions(now=now, idle_since=now - IDLE)
    store.add_web_session(session)
    response.set_cookie(
        COOKIE,
        token,
        max_age=int(LIFETIME.total_seconds()),
        path="/",
        secure=console.secure_cookies,
        httponly=True,
        samesite="lax",
    )
    request.scope.setdefault("state", {})[_STATE_KEY] = session
    return session


def end_session(request: Request, response: Response) -> WebSession | None:
    """Log out: delete the session row and the cookie; the session that ended, if any."""
    session = current_session(request)
    if session is not None:
        console_of(request).store.delete_web_session(session.id_hash)
    request.scope.setdefault("state", {})[_STATE_KEY] = _NONE
    response.delete_cookie(
        COOKIE, path="/", secure=console_of(request).secure_cookies, httponly=True, samesite="lax"
    )
    return session


def require_admin(request: Request) -> WebSession:
    """FastAPI dependency: the logged-in session, else :class:`LoginRequired` (a GET is
    sent to ``/login?next=…``, anything else gets a 403 page)."""
    session = current_session(request)
    if session is None:
        raise LoginRequired
    return session
