"""``/api/v1/status`` (the service at a glance) and ``/api/v1/mailboxes/{name}/status``
(one mailbox's grant and what the scheduler last did for it).

Grant facts come from the store, so they are right on every node and with the scheduler
stopped; the scheduler's view (next poll and refresh, last fetch and refresh) is there
when it runs in this process, else ``null``.
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run
# time, and their dependency (``read``) is local to the factory.

import asyncio
import dataclasses
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from mailoauth import __version__
from mailoauth.providers import GrantType
from mailoauth.scheduler import GrantState, load_snapshot, state_counts
from mailoauth.scheduler.snapshot import grant_state
from mailoauth.store import QueueStatus
from mailoauth.web.api.auth import Caller, requires
from mailoauth.web.api.calls import group_router
from mailoauth.web.api.errors import ERROR_RESPONSES
from mailoauth.web.api.keys import ApiScope
from mailoauth.web.context import ServiceContext

__all__ = ["status_routes"]


class LastFetch(BaseModel):
    at: datetime
    delivered: int
    seconds: float
    error: str | None


class LastRefresh(BaseModel):
    at: datetime
    expires_at: datetime | None
    error: str | None


class MailboxStatusView(BaseModel):
    """A mailbox's grant and, when the scheduler runs here, what it did and will do."""

    mailbox: str
    provider: str
    grant: GrantType
    state: GrantState
    authorized_as: str | None
    authorized_at: datetime | None
    expires_at: datetime | None = Field(description="When the access token expires.")
    refreshed_at: datetime | None
    scopes: list[str]
    last_error: str | None
    last_error_at: datetime | None
    client_secret_expires: date | None
    client_secret_expires_in_days: int | None = Field(
        description="Negative once it has expired: create a new client secret."
    )
    next_poll: datetime | None
    next_refresh: datetime | None
    last_fetch: LastFetch | None
    last_refresh: LastRefresh | None


class SchedulerView(BaseModel):
    started_at: datetime | None
    running_jobs: int
    last_plan_at: datetime | None
    last_plan_error: str | None
    counters: dict[str, int]


class ServiceStatus(BaseModel):
    """The service at a glance: mailboxes by grant state, the queue by status, and the
    scheduler's totals since start (``null`` when it does not run in this process)."""

    version: str
    mailboxes: dict[str, int]
    needs_attention: list[str] = Field(
        description="Mailboxes not connected (needs authorization, error, never authorized)."
    )
    queue: dict[str, int]
    scheduler: SchedulerView | None


def _plain(outcome: object | None) -> dict[str, Any] | None:
    return None if outcome is None else dataclasses.asdict(outcome)  # type: ignore[call-overload]


def status_routes(context: ServiceContext) -> APIRouter:
    router = group_router(context, "status")
    store = context.store
    read = Annotated[Caller, Depends(requires(context, ApiScope.READ))]

    @router.get("/status", response_model=ServiceStatus)
    async def service_status(caller: read) -> dict[str, Any]:
        """Mailboxes by grant state, queue depth by status, scheduler counters."""
        snapshot = await asyncio.to_thread(load_snapshot, store)
        queue = await asyncio.to_thread(store.outbound_counts)
        scheduler = context.runtime.scheduler
        view = None
        if scheduler is not None:
            status = scheduler.status()  # on the event loop, as it must be
            view = {
                "started_at": status.started_at,
                "running_jobs": status.running,
                "last_plan_at": status.last_plan_at,
                "last_plan_error": status.last_plan_error,
                "counters": dataclasses.asdict(status.counters),
            }
        return {
            "version": __version__,
            "mailboxes": {s.value: n for s, n in state_counts(snapshot).items()},
            "needs_attention": [
                e.name for e in snapshot.mailboxes if e.state is not GrantState.CONNECTED
            ],
            "queue": {s.value: queue.get(s, 0) for s in QueueStatus},
            "scheduler": view,
        }

    @router.get(
        "/mailboxes/{name}/status",
        response_model=MailboxStatusView,
        responses={404: ERROR_RESPONSES["default"]},
    )
    async def mailbox_status(name: str, caller: read) -> dict[str, Any]:
        """State (connected, needs_authorization, error, not_authorized), token expiry,
        last refresh and error, client-secret expiry, next poll and refresh."""
        mailbox = await asyncio.to_thread(store.get_mailbox, name)
        provider = await asyncio.to_thread(store.get_provider, mailbox.provider)
        grant = await asyncio.to_thread(store.get_grant, name)
        scheduler = context.runtime.scheduler
        planned = scheduler.status().mailboxes.get(name) if scheduler is not None else None
        expires = provider.client_secret_expires
        return {
            "mailbox": name,
            "provider": provider.name,
            "grant": mailbox.grant,
            "state": grant_state(grant),
            "authorized_as": grant.authorized_as if grant else None,
            "authorized_at": grant.authorized_at if grant else None,
            "expires_at": grant.expires_at if grant else None,
            "refreshed_at": grant.refreshed_at if grant else None,
            "scopes": list(grant.scopes) if grant else [],
            "last_error": grant.last_error if grant else None,
            "last_error_at": grant.last_error_at if grant else None,
            "client_secret_expires": expires,
            "client_secret_expires_in_days": (
                (expires - datetime.now(UTC).date()).days if expires else None
            ),
            "next_poll": planned.next_poll if planned else None,
            "next_refresh": planned.next_refresh if planned else None,
            "last_fetch": _plain(planned.last_fetch if planned else None),
            "last_refresh": _plain(planned.last_refresh if planned else None),
        }

    return router
