"""The OAuth redirect endpoint, ``/oauth/callback``: where the provider sends the admin's
browser (the consent popup) after consent.

The page shows the outcome in words — the mailbox, who authorized it and the scopes, or
what the provider or the check refused and what to do — and tells the console window
that opened the popup (``window.postMessage`` to the same origin, from ``/oauth/done.js``:
the console's Content-Security-Policy allows no inline script) so it updates without a
reload. :mod:`mailoauth.web.authorize` does the checks: one-time state, bound to the
console session, ten minutes, PKCE.

The request line of this endpoint carries an authorization code: uvicorn's access log is
off (``cli/serve.py``), the page sends no Referer (``Referrer-Policy: no-referrer``), and
nothing here logs the URL.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.templating import Jinja2Templates

from mailoauth.errors import MailoauthError
from mailoauth.mail.trust import http_client
from mailoauth.store import AuditEntry
from mailoauth.web.authorize import AuthorizationFailed, complete
from mailoauth.web.context import ServiceContext

__all__ = ["SESSION_COOKIE", "mount_oauth"]

#: The console's session cookie; an authorization started in the console is bound to it.
SESSION_COOKIE: Final = "mailoauth_session"

log = logging.getLogger("mailoauth.service")

_TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
_SCRIPT = (Path(__file__).parent / "oauth_done.js").read_text(encoding="utf-8")
_NO_STATE: Final = (
    "this page is where the provider sends you back after consent, and this visit carries "
    "no answer (no single state); start with Authorize in the console"
)
_HEADERS: Final = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}


def mount_oauth(app: FastAPI, context: ServiceContext) -> None:
    """Add ``/oauth/callback`` (and its small script) to ``app``."""

    @app.get("/oauth/callback", response_class=HTMLResponse, include_in_schema=False)
    async def callback(request: Request) -> Response:
        state = request.query_params.get("state")
        if not state or len(request.query_params.getlist("state")) != 1:
            return _page(request, {"ok": False, "mailbox": "", "message": _NO_STATE}, status=400)
        runtime = context.runtime
        try:
            async with AsyncExitStack() as stack:  # the service's HTTP client, or our own
                http = runtime.http
                if http is None:
                    http = await stack.enter_async_context(http_client(context.settings.ca_file))
                done = await complete(
                    context.store,
                    http,
                    str(request.url),
                    state,
                    session_id=request.cookies.get(SESSION_COOKIE),
                    forget=runtime.tokens.forget if runtime.tokens else None,
                )
        except AuthorizationFailed as exc:
            await asyncio.to_thread(
                _audit, context, request, exc.initiator, "mailbox.authorize.failed", exc.mailbox,
                str(exc),
            )  # fmt: skip
            page = {"ok": False, "mailbox": exc.mailbox, "message": str(exc)}
            return _page(request, page, status=400)
        except MailoauthError as exc:
            page = {"ok": False, "mailbox": "", "message": str(exc)}
            return _page(request, page, status=400)
        detail = f"as {done.who}; scopes {' '.join(done.scopes) or '-'}"
        await asyncio.to_thread(
            _audit, context, request, done.initiator, "mailbox.authorized", done.mailbox, detail
        )
        page = {
            "ok": True,
            "mailbox": done.mailbox,
            "who": done.who,
            "scopes": " ".join(done.scopes),
            "message": f"mailbox {done.mailbox} is connected",
        }
        return _page(request, page, status=200)

    @app.get("/oauth/done.js", include_in_schema=False)
    def script() -> Response:
        return Response(
            _SCRIPT, media_type="text/javascript", headers={"Cache-Control": "no-cache"}
        )


def _audit(
    context: ServiceContext,
    request: Request,
    initiator: str,
    action: str,
    mailbox: str,
    detail: str,
) -> None:
    """The outcome in the audit log, credited to the admin who clicked Authorize (or
    named after the API key that asked)."""
    admin = initiator.removeprefix("admin ") if initiator.startswith("admin ") else None
    if admin is None:
        detail = f"{detail} (started by {initiator})"
    entry = AuditEntry(
        at=datetime.now(UTC),
        action=action,
        admin=admin,
        target=mailbox,
        detail=detail[:500],
        source=request.client.host if request.client else "unknown",
    )
    try:
        context.store.add_audit(entry)
    except MailoauthError as exc:  # the grant is stored; a lost audit line is only logged
        log.error("could not write the audit log: %s", exc)


def _page(request: Request, result: dict[str, object], *, status: int) -> Response:
    return _TEMPLATES.TemplateResponse(
        request, "oauth_result.html", {"result": result}, status_code=status, headers=_HEADERS
    )
