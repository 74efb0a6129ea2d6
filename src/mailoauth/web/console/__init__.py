"""The admin console: server-rendered pages for admins (Jinja2 templates in
``web/templates``, small scripts and styles in ``web/static``; no build step, nothing
loaded from elsewhere).

::

    mailoauth.web.console
    ├── state      Console: context, templates, login limits, setup link, clock; console_of
    ├── passwords  scrypt hashes of admin passwords (stdlib, constant-time check)
    ├── accounts   create / check / re-key / remove admins (CLI and console), audited
    ├── sessions   server-side sessions, the cookie, require_admin, current_session
    ├── csrf       per-session CSRF secret, masked tokens, the middleware checking every POST
    ├── limits     login rate limit per source address and per admin name
    ├── headers    CSP, X-Frame-Options, Referrer-Policy, Cache-Control
    ├── forms      form_of (urlencoded forms), source_of, is_safe_next
    ├── render     render (page in the layout), render_error, redirect, flash
    ├── audit      audit(request, action, target, detail)
    ├── setup      first run: the one-time setup link and page
    ├── auth       /login, /logout
    ├── dashboard  the dashboard's rows (pure)
    ├── pages      /, /audit
    ├── fields     provider and mailbox forms ⇄ apply-file tables; errors per field (pure)
    ├── regrant    which saved changes invalidate a mailbox's grant, and marking it
    ├── saving     saving a form through the API's bodies and the store
    ├── routing    ConsoleRoute: a missing object answered with a 404 page in words
    ├── runtime    the service's token service and HTTP client, from a worker thread
    ├── providers  /providers: list, add, edit, delete
    ├── mailboxes  /mailboxes: list, add, edit, delete
    ├── mailbox_actions  /mailboxes/NAME: state, Authorize, Test connection, Send test mail
    ├── queue_view /queue: the outbound queue, retry, delete, purge
    └── debug_view /mailboxes/NAME/debug: the redacted transcript, recording on/off

A page is a route on an ``APIRouter`` listed in :data:`ROUTERS`; see docs/console.md
("Adding a page") for the helpers a new page uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from mailoauth.web.console import (
    auth,
    debug_view,
    mailbox_actions,
    mailboxes,
    pages,
    providers,
    queue_view,
    setup,
)
from mailoauth.web.console.audit import audit
from mailoauth.web.console.csrf import FIELD as CSRF_FIELD
from mailoauth.web.console.csrf import HEADER as CSRF_HEADER
from mailoauth.web.console.csrf import CsrfMiddleware
from mailoauth.web.console.forms import form_of, source_of
from mailoauth.web.console.headers import SecurityHeadersMiddleware
from mailoauth.web.console.render import flash, make_templates, redirect, render, render_error
from mailoauth.web.console.sessions import LoginRequired, current_session, require_admin
from mailoauth.web.console.setup import setup_link
from mailoauth.web.console.state import Console, console_of
from mailoauth.web.context import ServiceContext

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "ROUTERS",
    "Console",
    "audit",
    "console_of",
    "current_session",
    "flash",
    "form_of",
    "mount_console",
    "redirect",
    "render",
    "render_error",
    "require_admin",
    "setup_link",
    "source_of",
]

STATIC: Final = Path(__file__).parent.parent / "static"
#: The console's routers, in the order they are added.
ROUTERS: Final[tuple[APIRouter, ...]] = (
    setup.router,
    auth.router,
    pages.router,
    providers.router,
    mailboxes.router,
    mailbox_actions.router,
    debug_view.router,
    queue_view.router,
)


async def _login_required(request: Request, _exc: Exception) -> Response:
    if request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect(f"/login?next={quote(target, safe='/')}")
    message = "you are not logged in, or your session has ended; log in and try again"
    return render_error(request, 403, "Log in first", message)


def mount_console(app: FastAPI, context: ServiceContext) -> Console:
    """Add the console's pages, static files and middleware (CSRF, headers) to ``app``."""
    console = Console(context, make_templates())
    app.state.console = console
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_middleware(CsrfMiddleware, refuse=render_error)
    app.add_middleware(SecurityHeadersMiddleware)  # added last: outermost, sees every answer
    return console
