"""The Gmail API (REST v1): send a MIME message, fetch a label as MIME, list labels.

Requests (Gmail API reference "users.messages": send, list, get, modify, trash;
"users.labels.list"; guide "Sending email")::

    POST /gmail/v1/users/me/messages/send          {"raw": base64url(MIME)}
    GET  /gmail/v1/users/me/messages?labelIds=INBOX&maxResults=N&pageToken=…
                                                   newest first; nextPageToken pages
    GET  /gmail/v1/users/me/messages/{id}?format=raw   {"raw": base64url(MIME), …}
    POST /gmail/v1/users/me/messages/{id}/modify   {"addLabelIds": […], "removeLabelIds": […]}
    POST /gmail/v1/users/me/messages/{id}/trash
    GET  /gmail/v1/users/me/labels

A folder is a label. System labels (INBOX, SPAM, …) are their own ids; a user label's id
("Label_12") is looked up by its name. The after-fetch actions are label changes:
``seen`` removes UNREAD, ``move:LABEL`` adds LABEL and removes the fetched label (INBOX:
archive), ``delete`` moves to the trash (emptied by Gmail after 30 days). Permanent
deletion (``DELETE …/messages/{id}``) needs the full ``https://mail.google.com/`` scope,
which grants IMAP and SMTP too; ``gmail.modify`` is enough for everything here, so
mailoauth asks for no more than that.

``user`` None is ``me``: the user the token was issued for (a service account's token
with domain-wide delegation is issued for its ``sub``).
"""

from __future__ import annotations

import base64
import binascii
from email.message import EmailMessage
from typing import Final
from urllib.parse import quote

import httpx

from mailoauth.errors import ConfigError, MailError, RemoteProtocolError
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

__all__ = ["SYSTEM_LABELS", "check_gmail", "fetch_gmail", "send_gmail"]

#: Labels whose id is their name (Gmail "Manage labels").
SYSTEM_LABELS: Final = frozenset(
    {
        "INBOX",
        "SPAM",
        "TRASH",
        "UNREAD",
        "STARRED",
        "IMPORTANT",
        "SENT",
        "DRAFT",
        "CHAT",
        "CATEGORY_PERSONAL",
        "CATEGORY_SOCIAL",
        "CATEGORY_PROMOTIONS",
        "CATEGORY_UPDATES",
        "CATEGORY_FORUMS",
    }
)
_URLSAFE: Final = str.maketrans("-_", "+/")
PAGE: Final = 500  # maxResults: the most Gmail returns per page

_SCOPE: Final = ("ACCESS_TOKEN_SCOPE_INSUFFICIENT", "insufficientPermissions")
_DISABLED: Final = ("SERVICE_DISABLED", "accessNotConfigured")


def _hint(code: str) -> str:
    scope = (
        "the token lacks the scope: gmail.send to send, gmail.modify to fetch; add it to "
        "the mailbox's scopes and authorize again"
    )
    enable = (
        "enable the Gmail API in the Google Cloud project of the OAuth client "
        "(APIs & Services → Library → Gmail API)"
    )
    if code in _SCOPE:
        return scope
    if code in _DISABLED:
        return enable
    return f"{scope}; or {enable}; a Workspace admin may also have blocked the app"


GMAIL: Final = ApiProfile(
    "the Gmail API",
    "gmail",
    _hint,
    throttle_codes=frozenset({"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"}),
)


def _b64url_decode(text: str, what: str) -> bytes:
    """Base64url with or without padding (how Google encodes ``bytes`` fields)."""
    try:
        return base64.b64decode(text.translate(_URLSAFE) + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise RemoteProtocolError(f"{what} is not base64url") from None


def _users(user: str | None) -> str:
    return f"/gmail/v1/users/{quote(user or 'me', safe='@')}"


async def send_gmail(
    http: httpx.AsyncClient,
    token: Secret,
    message: EmailMessage,
    *,
    base_url: str,
    user: str | None = None,
    transcript: Transcript | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> None:
    """Send ``message`` as MIME; Gmail files it under SENT."""
    data = mime_bytes(message)
    api = ApiSession(GMAIL, http, token, base_url, transcript, retry)
    await api.json(
        "POST",
        api.url(f"{_users(user)}/messages/send"),
        action="send the message",
        body={"raw": base64.urlsafe_b64encode(data).decode("ascii")},
        message_size=len(data),
    )


class _Labels:
    """Label names → ids, listed once per call when a user label is named."""

    def __init__(self, api: ApiSession, users: str) -> None:
        self.api = api
        self.users = users
        self._listed: list[tuple[str, str]] | None = None

    async def names(self) -> list[tuple[str, str]]:
        if self._listed is None:
            action = "list the labels"
            body = await self.api.json("GET", self.api.url(f"{self.users}/labels"), action=action)
            self._listed = [
                (text_field(item, "id", action), text_field(item, "name", action))
                for item in items(body, "labels", action)
            ]
        return self._listed

    async def id_of(self, name: str, field: str) -> str:
        if name.upper() in SYSTEM_LABELS:
            return name.upper()
        listed = await self.names()
        exact = [label_id for label_id, label in listed if label == name]
        loose = [label_id for label_id, label in listed if label.casefold() == name.casefold()]
        if exact or loose:
            return (exact or loose)[0]
        raise ConfigError(
            field,
            f"Gmail has no label named {name!r}",
            "use INBOX or the name of an existing label (create it in Gmail first)",
        )


class _GmailLabel:
    def __init__(self, api: ApiSession, users: str, label: str, verb: str, target: str) -> None:
        self.api = api
        self.users = users
        self.label = label  # the fetched label's id
        self.verb = verb
        self.target = target  # the move target's label id

    def _message(self, uid: str) -> str:
        return self.api.url(f"{self.users}/messages/{quote(uid, safe='')}")

    async def download(self, uid: str) -> bytes | None:
        what = f"download message {uid}"
        try:
            body = await self.api.json(
                "GET", self._message(uid), action=what, params={"format": "raw"}
            )
        except MailError as exc:
            if exc.code == 404:
                return None
            raise
        return _b64url_decode(text_field(body, "raw", what), f"the raw of message {uid}")

    async def after_fetch(self, uid: str) -> bool:
        verb, url = self.verb, self._message(uid)
        if verb == "seen":
            await self._modify(uid, add=[], remove=["UNREAD"])
        elif verb == "move":
            remove = [self.label] if self.label != self.target else []
            await self._modify(uid, add=[self.target], remove=remove)
        elif verb == "delete":
            await self.api.json("POST", f"{url}/trash", action=f"move message {uid} to the trash")
        return verb != "keep"

    async def _modify(self, uid: str, *, add: list[str], remove: list[str]) -> None:
        await self.api.json(
            "POST",
            f"{self._message(uid)}/modify",
            action=f"change the labels of message {uid}",
            body={"addLabelIds": add, "removeLabelIds": remove},
        )


async def fetch_gmail(
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
    """Hand the new messages labelled ``folder`` to ``deliver``, oldest first, as raw
    MIME; ``after_fetch``: keep, seen, delete (trash) or move:LABEL. Gmail lists newest
    first, so the whole label is listed, then taken in reverse."""
    verb, target_name = parse_after_fetch(after_fetch)
    api = ApiSession(GMAIL, http, token, base_url, transcript, retry)
    users = _users(user)
    labels = _Labels(api, users)
    label = await labels.id_of(folder, "incoming.folder")
    target = await labels.id_of(target_name, "incoming.after_fetch") if target_name else ""
    what = f"list the messages labelled {folder}"
    listed: list[str] = []
    params = {"labelIds": label, "maxResults": str(PAGE)}
    while True:
        body = await api.json("GET", api.url(f"{users}/messages"), action=what, params=params)
        listed += [text_field(item, "id", what) for item in items(body, "messages", what)]
        page = body.get("nextPageToken")
        if not isinstance(page, str) or not page:
            break
        params = {**params, "pageToken": page}
    listed.reverse()
    return await fetch_new(
        mailbox=mailbox,
        folder=folder,
        listed=listed,
        source=_GmailLabel(api, users, label, verb, target),
        deliver=deliver,
        ledger=ledger,
        limit=limit,
    )


async def check_gmail(
    http: httpx.AsyncClient,
    token: Secret,
    *,
    base_url: str,
    user: str | None = None,
    transcript: Transcript | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> list[str]:
    """The names of the mailbox's labels (proves token, scope and that the API is on)."""
    api = ApiSession(GMAIL, http, token, base_url, transcript, retry)
    return [name for _, name in await _Labels(api, _users(user)).names()]
