"""``/api/v1/mailboxes/{name}/send | fetch | test``: mail now, through the same
:mod:`mailoauth.mail` functions as the CLI, with the service's token service and client.

``send`` queues by default: ``202`` only once the message is committed to the outbound
queue (DESIGN.md invariant 1), then a delivery run starts at once (:mod:`mailoauth.queue.nudge`)
and the scheduler retries what must wait. ``?sync=true`` sends now, bypassing the queue:
``200`` when the server took it, else the error (502 refused, 503 try later).
``fetch`` runs one fetch into the mailbox's configured ``incoming.deliver`` target;
``test`` runs ``mailoauth test``'s step-by-step check. Both answer 200 with ``ok`` and the
details when they ran, whatever they found.
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run
# time, and their dependencies (``send``, ``admin``) are local to the factory.

import asyncio
import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from mailoauth.mail.checking import check
from mailoauth.mail.fetching import fetch
from mailoauth.mail.sending import send
from mailoauth.mail.smtp import envelope_of
from mailoauth.queue import enqueue
from mailoauth.validate import check_address
from mailoauth.web.api.auth import Caller, requires
from mailoauth.web.api.calls import group_router
from mailoauth.web.api.errors import ERROR_RESPONSES
from mailoauth.web.api.keys import ApiScope
from mailoauth.web.api.messages import SendRequest, build_message, ready_to_send
from mailoauth.web.api.runtime import running
from mailoauth.web.context import ServiceContext

__all__ = ["mail_routes"]

log = logging.getLogger("mailoauth.api")

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: ERROR_RESPONSES["default"] for code in (404, 409, 502, 503)
}


class SendResult(BaseModel):
    """What became of the message: queued (with its queue id) or sent."""

    status: Literal["queued", "sent"]
    id: int | None = Field(None, description="The queue id (GET /api/v1/queue/{id}).")
    message_id: str
    recipients: list[str]


class FetchResult(BaseModel):
    """One fetch run: what was delivered, and why it stopped early if it did."""

    ok: bool
    folder: str
    delivered: int
    uids: list[str]
    skipped: int
    remaining: int
    actions: int
    error: str | None
    notes: list[str]


class CheckRequest(BaseModel):
    """Options of a test run."""

    model_config = ConfigDict(extra="forbid")

    send_to: Annotated[StrictStr | None, Field(description="Also send a test message there.")] = (
        None
    )
    debug: Annotated[StrictBool, Field(description="Keep a redacted transcript of the run.")] = (
        False
    )


class CheckStepView(BaseModel):
    name: str
    ok: bool
    detail: str


class CheckResult(BaseModel):
    """Each step of the chain: token, outgoing login, test message, incoming login."""

    ok: bool
    steps: list[CheckStepView]


_SENT: dict[int | str, dict[str, Any]] = {
    200: {"model": SendResult, "description": "Sent (sync=true)"}
}


def mail_routes(context: ServiceContext) -> APIRouter:
    router = group_router(context, "mail")
    store, settings = context.store, context.settings
    sender = Annotated[Caller, Depends(requires(context, ApiScope.SEND))]
    admin = Annotated[Caller, Depends(requires(context, ApiScope.ADMIN))]

    @router.post(
        "/mailboxes/{name}/send",
        response_model=SendResult,
        status_code=202,
        responses=_SENT | _ERRORS,
    )
    async def send_message(
        name: str,
        body: SendRequest,
        caller: sender,
        response: Response,
        sync: Annotated[
            bool, Query(description="Send now, not through the queue; answer when done.")
        ] = False,
    ) -> dict[str, Any]:
        """Queue a message (202 once it is stored), or send it now with ``sync=true``."""
        mailbox = await asyncio.to_thread(store.get_mailbox, name)
        message = ready_to_send(mailbox, build_message(body))
        if sync:
            tokens, http = running(context)
            sent = await send(
                store,
                tokens,
                name,
                message,
                http=http,
                ca_file=settings.ca_file,
                debug=body.debug,
            )
            recipients = envelope_of(sent)[1]
            log.info("%s: sent %s from %s", caller, sent["Message-ID"], name)
            response.status_code = 200
            return {
                "status": "sent",
                "message_id": str(sent["Message-ID"]),
                "recipients": recipients,
            }
        entry = await asyncio.to_thread(enqueue, store, name, message)
        log.info("%s: queued %s (%s) from %s", caller, entry.id, entry.message_id, name)
        if (nudger := context.runtime.nudger) is not None:
            nudger.nudge(name)  # else no background: it waits for `queue run` / serve
        return {
            "status": "queued",
            "id": entry.id,
            "message_id": entry.message_id,
            "recipients": list(entry.recipients),
        }

    @router.post("/mailboxes/{name}/fetch", response_model=FetchResult, responses=_ERRORS)
    async def fetch_mailbox(
        name: str,
        caller: admin,
        limit: Annotated[int | None, Query(ge=1, le=10_000, description="At most N.")] = None,
    ) -> dict[str, Any]:
        """Fetch new mail now into the mailbox's ``incoming.deliver`` target, then do its
        after-fetch action; nothing is fetched twice."""
        await asyncio.to_thread(store.get_mailbox, name)  # 404 before 503
        tokens, http = running(context)
        report = await fetch(store, tokens, name, http=http, limit=limit, ca_file=settings.ca_file)
        log.info("%s: fetched %d message(s) from %s", caller, len(report.delivered), name)
        return {
            "ok": report.error is None,
            "folder": report.folder,
            "delivered": len(report.delivered),
            "uids": report.delivered,
            "skipped": report.skipped,
            "remaining": report.remaining,
            "actions": report.actions,
            "error": report.error,
            "notes": report.notes,
        }

    @router.post("/mailboxes/{name}/test", response_model=CheckResult, responses=_ERRORS)
    async def test_mailbox(
        name: str, caller: admin, body: CheckRequest | None = None
    ) -> dict[str, Any]:
        """Check the whole chain step by step: token, connect, TLS, login, (a test
        message), incoming login. ``ok`` is false when a step failed; its detail says why."""
        options = body or CheckRequest()
        if options.send_to is not None:
            check_address("send_to", options.send_to)
        mailbox = await asyncio.to_thread(store.get_mailbox, name)
        tokens, http = running(context)
        steps = await check(
            store,
            tokens,
            mailbox,
            http=http,
            send_to=options.send_to,
            ca_file=settings.ca_file,
            debug=options.debug,
        )
        log.info("%s: tested mailbox %s", caller, name)
        return {
            "ok": all(step.ok for step in steps),
            "steps": [{"name": s.name, "ok": s.ok, "detail": s.detail} for s in steps],
        }

    return router
