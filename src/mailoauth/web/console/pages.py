"""The console's read-only pages: the dashboard and the audit log.

Every route here depends on :func:`~mailoauth.web.console.sessions.require_admin`: without
a live session a GET is sent to ``/login?next=…``. Routes are plain ``def`` (the store
blocks; FastAPI runs them in worker threads); the scheduler's status is read on the event
loop through :func:`anyio.from_thread.run_sync`, as it must be.
"""

from __future__ import annotations

from typing import Annotated

import anyio.from_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from mailoauth.scheduler import SchedulerStatus, load_snapshot
from mailoauth.store import WebSession
from mailoauth.store.console import AUDIT_PAGE
from mailoauth.web.console.dashboard import build_dashboard
from mailoauth.web.console.render import render
from mailoauth.web.console.sessions import require_admin
from mailoauth.web.console.state import console_of

__all__ = ["router", "scheduler_status"]

router = APIRouter(include_in_schema=False)
Admin = Annotated[WebSession, Depends(require_admin)]


def scheduler_status(request: Request) -> SchedulerStatus | None:
    """The scheduler's status (read on the event loop), None when it does not run here."""
    scheduler = console_of(request).context.runtime.scheduler
    if scheduler is None:
        return None
    return anyio.from_thread.run_sync(scheduler.status)


@router.get("/")
def dashboard(request: Request, session: Admin) -> Response:
    console = console_of(request)
    status = scheduler_status(request)
    snapshot = load_snapshot(console.store)
    queue = console.store.outbound_by_mailbox()
    view = build_dashboard(snapshot, status, queue, console.clock())
    return render(request, "dashboard.html", {"view": view}, section="dashboard")


@router.get("/audit")
def audit_log(request: Request, session: Admin, before: int | None = None) -> Response:
    entries = console_of(request).store.list_audit(limit=AUDIT_PAGE, before=before)
    older = entries[-1].id if len(entries) == AUDIT_PAGE else None
    values = {"entries": entries, "older": older, "first_page": before is None}
    return render(request, "audit.html", values, section="audit")
