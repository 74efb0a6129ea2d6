"""``/api/v1/queue``: the outbound queue — list, one entry, retry, delete, purge.

The same operations as ``mailoauth queue``. Entries show envelope, subject, status,
attempts and the last error; never the message body (it is someone's mail).
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run
# time, and their dependencies (``read``, ``admin``) are local to the factory.

import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, StrictStr

from mailoauth.errors import ConfigError
from mailoauth.store import QueuedMessage, QueueStatus
from mailoauth.web.api.auth import Caller, requires
from mailoauth.web.api.calls import group_router
from mailoauth.web.api.errors import ERROR_RESPONSES
from mailoauth.web.api.keys import ApiScope
from mailoauth.web.api.schemas import view_model
from mailoauth.web.api.views import queued_view
from mailoauth.web.context import ServiceContext

__all__ = ["QueuedView", "queue_routes"]

log = logging.getLogger("mailoauth.api")

QueuedView = view_model(QueuedMessage, exclude=("lease_owner",))

#: Queue ids are 64-bit integers in the database; a larger one is simply not there.
EntryId = Annotated[int, Path(ge=1, le=2**63 - 1, description="The message's queue id.")]
_NOT_FOUND: Final[dict[int | str, dict[str, Any]]] = {404: ERROR_RESPONSES["default"]}


class PurgeRequest(BaseModel):
    """Which messages to delete: sent ones older than N days, and/or all of a mailbox's
    (messages being sent right now are left alone)."""

    model_config = ConfigDict(extra="forbid")

    sent_older_than_days: Annotated[StrictFloat | StrictInt, Field(ge=0, le=36500)] | None = None
    mailbox: StrictStr | None = None


class Purged(BaseModel):
    deleted: int


def queue_routes(context: ServiceContext) -> APIRouter:
    router = group_router(context, "queue")
    store = context.store
    read = Annotated[Caller, Depends(requires(context, ApiScope.READ))]
    admin = Annotated[Caller, Depends(requires(context, ApiScope.ADMIN))]

    @router.get("/queue", response_model=list[QueuedView])  # type: ignore[valid-type]
    def list_queue(
        caller: read,
        status: Annotated[list[QueueStatus] | None, Query(description="Only these.")] = None,
        mailbox: Annotated[str | None, Query(description="Only this mailbox's.")] = None,
        limit: Annotated[int, Query(ge=1, le=1000, description="At most N, newest first.")] = 100,
    ) -> list[dict[str, Any]]:
        """Queued, sending, sent, failed and dead messages, newest first."""
        entries = store.list_outbound(statuses=status or (), mailbox=mailbox, limit=limit)
        return [queued_view(e) for e in entries]

    @router.get("/queue/{entry_id}", response_model=QueuedView, responses=_NOT_FOUND)
    def get_queued(entry_id: EntryId, caller: read) -> dict[str, Any]:
        """One message's envelope, status, attempts and last error."""
        return queued_view(store.get_outbound(entry_id))

    @router.post("/queue/{entry_id}/retry", response_model=QueuedView, responses=_NOT_FOUND)
    def retry_queued(entry_id: EntryId, caller: admin) -> dict[str, Any]:
        """Queue a failed, dead or waiting message again, due now, with a fresh retry
        window (the scheduler's next drain sends it)."""
        entry = store.retry_outbound(entry_id, now=datetime.now(UTC))
        log.info("%s: queued message %s again", caller, entry_id)
        return queued_view(entry)

    @router.delete(
        "/queue/{entry_id}", status_code=204, response_class=Response, responses=_NOT_FOUND
    )
    def delete_queued(entry_id: EntryId, caller: admin) -> None:
        """Delete one message (not while it is being sent)."""
        entry = store.purge_outbound(entry_id)
        log.info("%s: deleted queued message %s (%s)", caller, entry_id, entry.status.value)

    @router.post("/queue/purge", response_model=Purged)
    def purge_queue(body: PurgeRequest, caller: admin) -> dict[str, Any]:
        """Delete sent messages older than N days, and/or every message of a mailbox."""
        if body.sent_older_than_days is None and body.mailbox is None:
            raise ConfigError(
                "sent_older_than_days", "and mailbox are both missing", "give one or both"
            )
        before = None
        if body.sent_older_than_days is not None:
            before = datetime.now(UTC) - timedelta(days=body.sent_older_than_days)
        if body.mailbox is not None:
            store.get_mailbox(body.mailbox)  # 404 for a mailbox that does not exist
        count = store.purge_outbound_where(sent_before=before, mailbox=body.mailbox)
        log.info("%s: purged %d queued message(s)", caller, count)
        return {"deleted": count}

    return router
