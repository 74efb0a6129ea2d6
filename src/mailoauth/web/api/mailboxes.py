"""``/api/v1/mailboxes``: list, read, create or replace (PUT), remove; authorize; the
redacted debug transcript.

A PUT body is the mailbox's table of a ``mailoauth apply`` file (:mod:`.bodies`), checked
against its provider by the store. ``authorize`` answers with the provider's consent URL
for the authorization-code grant (:func:`mailoauth.web.authorize.begin`, shared with the
console; the browser comes back to ``/oauth/callback``), and obtains the token at once for
the grants that need no browser (password, client credentials, service account).
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run
# time, and their dependencies (``read``, ``admin``) are local to the factory.

import asyncio
import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from mailoauth.errors import ConfigError, NotFoundError
from mailoauth.models import Mailbox, Provider
from mailoauth.providers import GrantType
from mailoauth.store import Change
from mailoauth.web import authorize
from mailoauth.web.api.auth import Caller, requires
from mailoauth.web.api.bodies import mailbox_from_body
from mailoauth.web.api.calls import group_router
from mailoauth.web.api.errors import ERROR_RESPONSES
from mailoauth.web.api.keys import ApiScope
from mailoauth.web.api.runtime import running
from mailoauth.web.api.schemas import MailboxBody, MailboxSaved, MailboxView
from mailoauth.web.api.views import mailbox_view
from mailoauth.web.context import ServiceContext

__all__ = ["mailbox_routes"]

log = logging.getLogger("mailoauth.api")

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: ERROR_RESPONSES["default"]}
_CONFLICT: dict[int | str, dict[str, Any]] = {409: ERROR_RESPONSES["default"]}
_CREATED: dict[int | str, dict[str, Any]] = {201: {"model": MailboxSaved, "description": "Created"}}
_UPSTREAM: dict[int | str, dict[str, Any]] = {
    502: ERROR_RESPONSES["default"],
    503: ERROR_RESPONSES["default"],
}


class Authorization(BaseModel):
    """Where the admin's browser goes to consent (authorization-code grant), or the token
    just obtained (the grants that need no browser)."""

    url: str | None = Field(None, description="Open this in a browser to consent.")
    status: str = Field(description="'pending' (consent needed) or 'connected'.")
    expires_at: datetime | None = Field(None, description="When the new access token expires.")


class TranscriptEntry(BaseModel):
    """One redacted line: when, which connection, protocol, who (C, S, *) and the text."""

    at: datetime
    session: str
    protocol: str
    direction: str
    text: str


def mailbox_routes(context: ServiceContext) -> APIRouter:
    router = group_router(context, "mailboxes")
    store = context.store
    read = Annotated[Caller, Depends(requires(context, ApiScope.READ))]
    admin = Annotated[Caller, Depends(requires(context, ApiScope.ADMIN))]

    def view(mailbox: Mailbox) -> dict[str, Any]:
        provider = store.get_provider(mailbox.provider)
        return mailbox_view(mailbox, provider, store.get_grant(mailbox.name))

    def find_provider(name: str) -> Provider | None:
        try:
            return store.get_provider(name)
        except NotFoundError:
            return None

    @router.get("/mailboxes", response_model=list[MailboxView])  # type: ignore[valid-type]
    def list_mailboxes(caller: read) -> list[dict[str, Any]]:
        """Every mailbox with its grant state, sorted by name."""
        return [view(m) for m in store.list_mailboxes()]

    @router.get("/mailboxes/{name}", response_model=MailboxView, responses=_NOT_FOUND)
    def get_mailbox(name: str, caller: read) -> dict[str, Any]:
        """One mailbox, with the scopes it requests and its grant state."""
        return view(store.get_mailbox(name))

    @router.put("/mailboxes/{name}", response_model=MailboxSaved, responses=_CREATED)
    def put_mailbox(
        name: str, body: MailboxBody, caller: admin, response: Response
    ) -> dict[str, Any]:
        """Create or replace a mailbox. Secrets left out keep their stored values."""
        try:
            stored: Mailbox | None = store.get_mailbox(name)
        except NotFoundError:
            stored = None
        change = store.put_mailbox(mailbox_from_body(name, body, stored, find_provider))
        if change is Change.CREATED:
            response.status_code = 201
        log.info("%s: mailbox %s %s", caller, name, change.value)
        return {"change": change, "mailbox": view(store.get_mailbox(name))}

    @router.delete(
        "/mailboxes/{name}",
        status_code=204,
        response_class=Response,
        responses=_NOT_FOUND | _CONFLICT,
    )
    def delete_mailbox(name: str, caller: admin) -> None:
        """Remove a mailbox and forget its tokens (409 while it has unsent queued mail)."""
        store.delete_mailbox(name)
        log.info("%s: mailbox %s removed", caller, name)

    @router.post(
        "/mailboxes/{name}/authorize",
        response_model=Authorization,
        responses=_NOT_FOUND | _UPSTREAM,
    )
    async def authorize_mailbox(name: str, caller: admin) -> dict[str, Any]:
        """Authorization-code grant: the consent URL to open (valid 10 minutes). Password,
        client-credentials and service-account grants: the token, obtained now."""
        mailbox = await asyncio.to_thread(store.get_mailbox, name)
        if mailbox.grant is GrantType.AUTHORIZATION_CODE:
            url = await authorize.begin(
                store,
                context.settings.base_url,
                name,
                session_id=None,
                initiator=str(caller),
            )
            return {"url": url, "status": "pending"}
        if mailbox.grant is GrantType.DEVICE_CODE:
            raise ConfigError(
                "grant",
                f"mailbox {name!r} uses the device-code grant: someone must enter a code",
                f"run `mailoauth authorize {name}` on the server, which shows the code",
            )
        tokens, _http = running(context)
        token = await tokens.refresh(name)
        log.info("%s: mailbox %s authorized (%s)", caller, name, mailbox.grant.value)
        return {"status": "connected", "expires_at": token.expires_at}

    @router.get(
        "/mailboxes/{name}/transcript",
        response_model=list[TranscriptEntry],
        responses=_NOT_FOUND,
    )
    def mailbox_transcript(
        name: str,
        caller: admin,
        lines: Annotated[int, Query(ge=1, le=5000, description="The newest N lines.")] = 200,
    ) -> list[dict[str, Any]]:
        """The mailbox's redacted protocol transcript, oldest first (recorded while its
        ``debug`` switch is on, or for a ``test`` run with ``debug``)."""
        found = store.read_transcript(store.get_mailbox(name).name, limit=lines)
        return [
            {
                "at": line.at,
                "session": line.session,
                "protocol": line.protocol,
                "direction": line.direction,
                "text": line.text,
            }
            for line in found
        ]

    return router
