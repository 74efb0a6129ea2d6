"""ASGI application factory: the service's second composition root (with ``cli``).

Today it serves ``/healthz`` and a read-only overview of providers and mailboxes; the admin
console, REST API and OAuth redirect endpoint grow here. Routes that touch the store are
plain ``def`` so FastAPI runs them in its worker threads: the store is synchronous and
nothing blocking may run on the event loop.

There is no login yet, so ``mailoauth serve`` binds loopback addresses only, and no page
shows a secret: secret fields appear as "set" at most.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates

from mailoauth import __version__
from mailoauth.config import Settings
from mailoauth.errors import MailoauthError
from mailoauth.store import Store

__all__ = ["create_app"]

_TEMPLATES = Path(__file__).parent / "templates"


def create_app(settings: Settings, store: Store) -> FastAPI:
    app = FastAPI(
        title="mailoauth",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    templates = Jinja2Templates(directory=_TEMPLATES)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        try:
            store.list_providers()
        except MailoauthError:
            return JSONResponse({"status": "error", "database": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok", "version": __version__})

    @app.get("/", response_class=HTMLResponse)
    def overview(request: Request) -> HTMLResponse:
        providers = store.list_providers()
        mailboxes = [
            {"mailbox": m, "grant": store.get_grant(m.name)} for m in store.list_mailboxes()
        ]
        context: dict[str, Any] = {
            "providers": providers,
            "mailboxes": mailboxes,
            "base_url": settings.base_url,
            "today": date.today(),
            "version": __version__,
        }
        return templates.TemplateResponse(request, "overview.html", context)

    return app
