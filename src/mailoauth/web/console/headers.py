"""Security headers on the console's responses (OWASP secure headers project).

* ``Content-Security-Policy``: scripts, styles, images and requests from this origin
  only; no inline script or style (the console's JavaScript and CSS are files under
  ``/static``); forms post only here; no ``<base>``, no plugins; no framing.
* ``X-Frame-Options: DENY`` (the same, for older browsers): the console is never framed.
  The provider's consent page opens in a popup window, not a frame.
* ``Referrer-Policy: no-referrer``: URLs with a setup token or an authorization code never
  leave in a ``Referer``.
* ``X-Content-Type-Options: nosniff``.
* ``Cache-Control: no-store`` on pages (they show configuration), ``no-cache`` on
  ``/static`` files (revalidated, so an upgrade is seen at once).

A header a route set itself is left as it is (the OAuth result page brings its own). The
REST API (``/api/``) sets its own headers.
"""

from __future__ import annotations

from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CSP", "SecurityHeadersMiddleware"]

CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_ALWAYS: Final = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_SKIP: Final = ("/api/",)


class SecurityHeadersMiddleware:
    """ASGI middleware adding the headers above to every response outside ``/api/``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(_SKIP):
            await self.app(scope, receive, send)
            return
        cache = "no-cache" if scope["path"].startswith("/static/") else "no-store"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in {**_ALWAYS, "Cache-Control": cache}.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)
