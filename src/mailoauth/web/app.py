"""ASGI application factory: the service's second composition root (with ``cli``).

It serves ``/healthz``, ``/metrics``, the admin console (``web/console``: login, sessions,
CSRF on every form, security headers, the dashboard), the REST API (``web/api``) and the
OAuth redirect endpoint (``web/oauth.py``). Routes that touch the store are plain ``def``
so FastAPI runs them in its worker threads: the store is synchronous and nothing blocking
may run on the event loop. No page or response shows a secret: secret fields appear as
"set" at most.

The ASGI lifespan builds what the whole service shares — one ``httpx.AsyncClient``
(trusting the system's CAs plus ``MAILOAUTH_CA_FILE``), one
:class:`~mailoauth.oauth.tokens.TokenService` — and runs the
:class:`~mailoauth.scheduler.Scheduler` beside the routes: refresh-ahead, polling, and the
outbound queue's :func:`~mailoauth.queue.drain` — and the SMTP relay
(:func:`~mailoauth.relay.service.start_relays`; a listener that cannot bind is logged and
left off, the rest still runs). At shutdown (SIGTERM) it stops the relay and
the scheduler, then drains the token refreshes in flight, so a rotated refresh token is
stored before the process ends. ``background=False`` serves the routes alone.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from mailoauth import __version__, queue
from mailoauth.config import Settings
from mailoauth.errors import MailoauthError
from mailoauth.mail.trust import http_client
from mailoauth.oauth.tokens import TokenService
from mailoauth.queue.nudge import Nudger
from mailoauth.relay.service import start_relays
from mailoauth.scheduler import Scheduler, ServiceWork, load_snapshot, state_counts
from mailoauth.store import Store
from mailoauth.store.outbound import QueueStatus
from mailoauth.web.api import mount_api
from mailoauth.web.console import mount_console
from mailoauth.web.context import ServiceContext
from mailoauth.web.metrics import CONTENT_TYPE, MetricsView, render_metrics
from mailoauth.web.oauth import mount_oauth

__all__ = ["create_app"]

log = logging.getLogger("mailoauth.service")


def create_app(settings: Settings, store: Store, *, background: bool = True) -> FastAPI:
    context = ServiceContext(settings, store)
    runtime = context.runtime

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if not background:
            yield
            return
        async with http_client(settings.ca_file) as http:
            tokens = TokenService(store, http)
            work = ServiceWork(store, tokens, http, ca_file=settings.ca_file)
            drain = functools.partial(queue.drain, store, tokens, http, ca_file=settings.ca_file)
            scheduler = Scheduler(work, drain=drain)
            nudger = Nudger(lambda mailbox: drain(mailbox=mailbox), who="api")
            runtime.http, runtime.tokens, runtime.scheduler = http, tokens, scheduler
            runtime.nudger = nudger
            scheduler.start()
            relays = await start_relays(settings, store, tokens, drain)
            runtime.relays = relays
            try:
                yield
            finally:
                runtime.nudger = None  # no new delivery runs from the API
                await relays.stop()
                await nudger.wait()
                await scheduler.stop()
                unfinished = await tokens.drain()  # failures are recorded on the grants
                log.info("token refreshes drained (%d ended with an error)", len(unfinished))
                runtime.http = runtime.tokens = runtime.scheduler = runtime.relays = None

    app = FastAPI(
        title="mailoauth",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
        lifespan=lifespan,
    )

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        try:
            store.list_providers()
        except MailoauthError:
            return JSONResponse({"status": "error", "database": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok", "version": __version__})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        scheduler = runtime.scheduler
        try:
            mailboxes = state_counts(await asyncio.to_thread(load_snapshot, store))
            by_status = await asyncio.to_thread(store.outbound_counts)
            depth: int | None = by_status.get(QueueStatus.QUEUED, 0) + by_status.get(
                QueueStatus.SENDING, 0
            )
        except MailoauthError:
            mailboxes, depth = None, None  # the store is down: the counters still report
        relays = runtime.relays
        view = MetricsView(
            scheduler.status() if scheduler else None,
            mailboxes,
            queue_depth=depth,
            relay=relays.counters.snapshot() if relays and relays.started else None,
        )
        return Response(render_metrics(view), media_type=CONTENT_TYPE)

    mount_oauth(app, context)
    mount_api(app, context)
    mount_console(app, context)
    return app
