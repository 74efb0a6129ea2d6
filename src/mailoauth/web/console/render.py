"""Pages: the console's templates rendered inside its layout, redirects, one-shot notices.

:func:`render` fills what every page of ``base.html`` needs — the logged-in admin (for the
navigation), the CSRF token for forms (``csrf_token``) and scripts (the ``csrf-token``
meta tag), the active navigation ``section``, a notice left by :func:`flash`, the version
and the time — so a page only passes its own values. It looks the session up (blocking):
call it from a plain ``def`` route. :func:`render_error` renders without a session, safe
anywhere (the CSRF middleware uses it on the event loop).

Template filters: ``utc`` (``2026-11-23 14:05 UTC``) and ``relative`` (``in 42 min``,
``3 h ago``), both a dash for None.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, date, datetime
from typing import Any, Final

from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from jinja2 import pass_context
from jinja2.runtime import Context
from starlette.requests import Request

from mailoauth import __version__
from mailoauth.web.console.csrf import PRE_COOKIE, csrf_token
from mailoauth.web.console.sessions import current_session
from mailoauth.web.console.state import TEMPLATES, console_of

__all__ = ["flash", "make_templates", "redirect", "render", "render_error"]

FLASH_COOKIE: Final = "mailoauth_notice"
_FLASH_MAX: Final = 400
NONE: Final = "\u2013"  # an en dash: what a missing time shows


def _utc(value: datetime | date | None) -> str:
    if value is None:
        return NONE
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return value.isoformat()


def _span(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 90:
        return f"{minutes} min"
    hours = round(minutes / 60)
    if hours < 48:
        return f"{hours} h"
    return f"{round(hours / 24)} days"


@pass_context
def _relative(context: Context, value: datetime | None) -> str:
    if value is None:
        return NONE
    now: datetime = context.get("now") or datetime.now(UTC)
    seconds = (value - now).total_seconds()
    return f"in {_span(seconds)}" if seconds >= 0 else f"{_span(-seconds)} ago"


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES)
    templates.env.filters["utc"] = _utc
    templates.env.filters["relative"] = _relative
    return templates


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    section: str | None = None,
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """``template`` (which extends ``base.html``) with ``context`` and the layout's
    values; blocking (session lookup)."""
    console = console_of(request)
    session = current_session(request)
    token, new_pre = csrf_token(request)
    notice = _read_flash(request)
    values: dict[str, Any] = {
        "admin": session.admin if session else None,
        "csrf_token": token,
        "section": section,
        "notice": notice,
        "version": __version__,
        "base_url": console.settings.base_url,
        "now": console.clock(),
        **(context or {}),
    }
    response = console.templates.TemplateResponse(
        request, template, values, status_code=status, headers=headers
    )
    if new_pre is not None:
        response.set_cookie(
            PRE_COOKIE,
            new_pre,
            path="/",
            secure=console.secure_cookies,
            httponly=True,
            samesite="strict",
        )
    if notice is not None:
        response.delete_cookie(FLASH_COOKIE, path="/")
    return response


def render_error(
    request: Request,
    status: int,
    title: str,
    message: str,
    *,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A page that says what went wrong, without the navigation (no session lookup)."""
    console = console_of(request)
    values = {"title": title, "message": message, "version": __version__, "admin": None}
    return console.templates.TemplateResponse(
        request, "error.html", values, status_code=status, headers=headers
    )


def redirect(url: str) -> RedirectResponse:
    """``303 See Other``: after a POST, the browser GETs ``url`` (post/redirect/get)."""
    return RedirectResponse(url, status_code=303)


def flash(response: Response, text: str) -> None:
    """Leave a one-line notice ("Provider saved") for the next page :func:`render` shows.
    Never put a secret in it: it travels in a cookie."""
    data = text[:_FLASH_MAX].encode("utf-8")
    value = base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")
    response.set_cookie(FLASH_COOKIE, value, path="/", httponly=True, samesite="lax")


def _read_flash(request: Request) -> str | None:
    value = request.cookies.get(FLASH_COOKIE)
    if not value:
        return None
    try:
        data = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        return data.decode("utf-8")[:_FLASH_MAX]
    except (binascii.Error, UnicodeError, ValueError):
        return None
