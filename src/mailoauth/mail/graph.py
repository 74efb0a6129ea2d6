"""Microsoft Graph mail (REST v1.0): send a MIME message, fetch a folder as MIME, list
folders. Graph is Exchange Online's HTTPS transport (EWS is being shut down).

Requests (Microsoft Graph docs "user: sendMail", "Send messages with MIME content",
"List messages", "Get MIME content of a message", "message: move", "Paging")::

    POST   /me/sendMail              Content-Type: text/plain, body base64(MIME) → 202
    GET    /me/mailFolders/{folder}/messages?$select=id,receivedDateTime
               &$orderby=receivedDateTime&$top=N    pages through @odata.nextLink
    GET    /me/messages/{id}/$value  the raw MIME
    PATCH  /me/messages/{id}         {"isRead": true}
    POST   /me/messages/{id}/move    {"destinationId": folder} → 201
    DELETE /me/messages/{id}         → 204 (to Recoverable Items, not Deleted Items)
    GET    /me/mailFolders[?$filter=displayName eq '…']

``/me`` is the signed-in user of a delegated token (scopes ``Mail.Send``,
``Mail.ReadWrite``); an app-only token (client credentials, application permissions) has
no "me" and names the mailbox: ``/users/{id or address}``. Well-known folder names
(``inbox``, ``archive``, ``deleteditems``, …) work as folder ids; any other name is looked
up among the top-level folders by display name.
"""

from __future__ import annotations

import base64
from email.message import EmailMessage
from typing import Any, Final
from urllib.parse import quote

import httpx

from mailoauth.errors import ConfigError, MailError
from mailoauth.mail.api import (
    DEFAULT_RETRY,
    ApiProfile,
    ApiSession,
    RetryPolicy,
    fetch_new,
    items,
    mime_bytes,
    parse_after_fetch,
    text_field,
)
from mailoauth.mail.fetched import Deliver, FetchLedger, FetchReport
from mailoauth.mail.transcript import Transcript
from mailoauth.secret import Secret

__all__ = ["WELL_KNOWN_FOLDERS", "check_graph", "fetch_graph", "send_graph"]

#: Folder names Graph accepts in place of a folder id ("mailFolder resource type").
WELL_KNOWN_FOLDERS: Final = frozenset(
    {
        "archive",
        "clutter",
        "conflicts",
        "conversationhistory",
        "deleteditems",
        "drafts",
        "inbox",
        "junkemail",
        "localfailures",
        "msgfolderroot",
        "outbox",
        "recoverableitemsdeletions",
        "scheduled",
        "searchfolders",
        "sentitems",
        "serverfailures",
        "syncissues",
    }
)
PAGE: Final = 100  # messages per listing page ($top; Graph allows up to 1000)


def _hint(code: str) -> str:
    if code == "ErrorSendAsDenied":
        return "the login may not send as the message's From: use the mailbox's own address"
    return (
        "check that the app has the Microsoft Graph permission Mail.Send (sending) or "
        "Mail.ReadWrite (fetching), with admin consent where the tenant requires it, that "
        "the token was issued for Graph (not outlook.office.com), and that the mailbox has "
        "an Exchange Online licence"
    )


GRAPH: Final = ApiProfile("Microsoft Graph", "graph", _hint)


def _owner(user: str | None) -> str:
    return "/me" if user is None else f"/users/{quote(user, safe='@')}"


async def send_graph(
    http: httpx.AsyncClient,
    token: Secret,
    message: EmailMessage,
    *,
    base_url: str,
    user: str | None = None,
    transcript: Transcript | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> None:
    """Send ``message`` as MIME; Graph keeps a copy in Sent Items. ``user`` None: the
    token's signed-in user (delegated); else that mailbox (app-only tokens)."""
    data = mime_bytes(message)
    api = ApiSession(GRAPH, http, token, base_url, transcript, retry)
    await api.request(
        "POST",
        api.url(f"{_owner(user)}/sendMail"),
        action="send the message",
        content=base64.b64encode(data),
        content_type="text/plain",
        expect=(202,),
        message_size=len(data),
    )


async def _pages(
    api: ApiSession, url: str, params: dict[str, str], action: str
) -> list[dict[str, Any]]:
    """Every ``value`` item of a listing, following ``@odata.nextLink``."""
    found: list[dict[str, Any]] = []
    next_url: str | None = url
    query: dict[str, str] | None = params
    while next_url is not None:
        body = await api.json("GET", next_url, action=action, params=query)
        found += items(body, "value", action)
        link = body.get("@odata.nextLink")
        next_url = api.same_origin(link) if isinstance(link, str) else None
        query = None  # the link carries the query
    return found


async def _folder_id(api: ApiSession, owner: str, name: str, field: str) -> str:
    if name.lower() in WELL_KNOWN_FOLDERS:
        return name.lower()
    literal = name.replace("'", "''")  # OData string literal
    action = f"look up the folder {name!r}"
    found = await _pages(
        api,
        api.url(f"{owner}/mailFolders"),
        {"$filter": f"displayName eq '{literal}'", "$select": "id,displayName"},
        action,
    )
    if not found:
        raise ConfigError(
            field,
            f"Microsoft Graph has no top-level folder named {name!r}",
            "use a well-known name (inbox, archive, deleteditems, junkemail) or the display "
            "name of an existing top-level folder",
        )
    return text_field(found[0], "id", action)


class _GraphFolder:
    def __init__(self, api: ApiSession, owner: str, verb: str, target: str, target_id: str) -> None:
        self.api = api
        self.owner = owner
        self.verb = verb
        self.target = target  # the name given, for messages
        self.target_id = target_id

    def _message(self, uid: str) -> str:
        return self.api.url(f"{self.owner}/messages/{quote(uid, safe='')}")

    async def download(self, uid: str) -> bytes | None:
        try:
            response = await self.api.request(
                "GET", f"{self._message(uid)}/$value", action=f"download message {uid}"
            )
        except MailError as exc:
            if exc.code == 404:
                return None
            raise
        return response.content

    async def after_fetch(self, uid: str) -> bool:
        verb, url = self.verb, self._message(uid)
        if verb == "seen":
            await self.api.json(
                "PATCH", url, action=f"mark message {uid} read", body={"isRead": True}
            )
        elif verb == "move":
            await self.api.json(
                "POST",
                f"{url}/move",
                action=f"move message {uid} to {self.target}",
                body={"destinationId": self.target_id},
                expect=(200, 201),
            )
        elif verb == "delete":
            await self.api.request("DELETE", url, action=f"delete message {uid}", expect=(204,))
        return verb != "keep"


async def fetch_graph(
    http: httpx.AsyncClient,
    token: Secret,
    *,
    base_url: str,
    mailbox: str,
    folder: str,
    after_fetch: str,
    deliver: Deliver,
    ledger: FetchLedger,
    user: str | None = None,
    limit: int | None = None,
    transcript: Transcript | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> FetchReport:
    """Hand the new messages of ``folder`` to ``deliver``, oldest first, as raw MIME;
    ``after_fetch``: keep, seen (isRead), delete or move:FOLDER. The whole folder is
    listed first: moving or deleting while paging would shift Graph's $skip pages."""
    verb, target = parse_after_fetch(after_fetch)
    api = ApiSession(GRAPH, http, token, base_url, transcript, retry)
    owner = _owner(user)
    folder_id = await _folder_id(api, owner, folder, "incoming.folder")
    target_id = await _folder_id(api, owner, target, "incoming.after_fetch") if target else ""
    listing = await _pages(
        api,
        api.url(f"{owner}/mailFolders/{quote(folder_id, safe='')}/messages"),
        {"$select": "id,receivedDateTime", "$orderby": "receivedDateTime", "$top": str(PAGE)},
        f"list the messages of {folder}",
    )
    listed = [text_field(item, "id", "a listed message") for item in listing]
    return await fetch_new(
        mailbox=mailbox,
        folder=folder,
        listed=listed,
        source=_GraphFolder(api, owner, verb, target, target_id),
        deliver=deliver,
        ledger=ledger,
        limit=limit,
    )


async def check_graph(
    http: httpx.AsyncClient,
    token: Secret,
    *,
    base_url: str,
    user: str | None = None,
    transcript: Transcript | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> list[str]:
    """The display names of the mailbox's top-level folders (proves token and access)."""
    api = ApiSession(GRAPH, http, token, base_url, transcript, retry)
    action = "list the mail folders"
    folders = await _pages(
        api,
        api.url(f"{_owner(user)}/mailFolders"),
        {"$select": "id,displayName", "$top": str(PAGE)},
        action,
    )
    return [text_field(item, "displayName", action) for item in folders]
