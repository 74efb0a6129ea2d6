"""All of ``/api/v1``, assembled: one router per group of endpoints."""

from __future__ import annotations

from fastapi import APIRouter

from mailoauth.web.api.mail import mail_routes
from mailoauth.web.api.mailboxes import mailbox_routes
from mailoauth.web.api.providers import provider_routes
from mailoauth.web.api.queue import queue_routes
from mailoauth.web.api.status import status_routes
from mailoauth.web.context import ServiceContext

__all__ = ["PREFIX", "api_router"]

PREFIX = "/api/v1"


def api_router(context: ServiceContext) -> APIRouter:
    """Every API route, under :data:`PREFIX`, each with the scope it needs."""
    router = APIRouter(prefix=PREFIX)
    for routes in (status_routes, provider_routes, mailbox_routes, mail_routes, queue_routes):
        router.include_router(routes(context))
    return router
