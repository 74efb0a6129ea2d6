"""``fetch``: new mail of a mailbox, over its incoming transport, into a handler.

IMAP (:mod:`.imap`), POP3 (:mod:`.pop3`), Microsoft Graph (:mod:`.graph`) or the Gmail
API (:mod:`.gmail`); the delivery rule (no loss, at most a re-delivery) is in
:mod:`.fetched`. What was taken is remembered in the store (:class:`StoreLedger`), so the
CLI's ``mailoauth fetch``, the service's scheduler and a library caller share one memory
and never take a message twice. The handler is the caller's ``deliver``, else the
mailbox's ``incoming.deliver`` target (Maildir or webhook, :mod:`.handlers`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import httpx

from mailoauth.errors import ConfigError
from mailoauth.mail.auth import recording, with_token
from mailoauth.mail.fetched import Cursor, Deliver, FetchReport
from mailoauth.mail.gmail import fetch_gmail
from mailoauth.mail.graph import fetch_graph
from mailoauth.mail.handlers import handler_for
from mailoauth.mail.imap import fetch_imap
from mailoauth.mail.pop3 import fetch_pop3
from mailoauth.mail.sending import api_url, app_only_user
from mailoauth.oauth.tokens import AccessToken, TokenService
from mailoauth.providers import Transport
from mailoauth.store import Store

__all__ = ["StoreLedger", "fetch"]


class StoreLedger:
    """The :class:`~.fetched.FetchLedger` of one mailbox, kept in the store."""

    def __init__(self, store: Store, mailbox: str) -> None:
        self._store = store
        self._mailbox = mailbox

    async def cursor(self, folder: str) -> Cursor | None:
        found = await asyncio.to_thread(self._store.get_fetch_cursor, self._mailbox, folder)
        return None if found is None else Cursor(*found)

    async def advance(self, folder: str, cursor: Cursor) -> None:
        await asyncio.to_thread(
            self._store.put_fetch_cursor, self._mailbox, folder, cursor.validity, cursor.position
        )

    async def seen(self, folder: str) -> set[str]:
        return await asyncio.to_thread(self._store.fetch_seen, self._mailbox, folder)

    async def add_seen(self, folder: str, item: str) -> None:
        await asyncio.to_thread(self._store.add_fetch_seen, self._mailbox, folder, item)

    async def keep_seen(self, folder: str, present: Iterable[str]) -> None:
        await asyncio.to_thread(
            self._store.keep_fetch_seen, self._mailbox, folder, frozenset(present)
        )


async def fetch(
    store: Store,
    tokens: TokenService,
    mailbox_name: str,
    *,
    http: httpx.AsyncClient,
    deliver: Deliver | None = None,
    limit: int | None = None,
    ca_file: str | None = None,
    timeout: float = 30,
    debug: bool = False,
) -> FetchReport:
    """Fetch what is new in ``mailbox_name`` into ``deliver`` (default: the mailbox's
    ``incoming.deliver`` target) and do the after-fetch action for each message taken."""
    mailbox = await asyncio.to_thread(store.get_mailbox, mailbox_name)
    incoming = mailbox.incoming
    if incoming is None:
        raise ConfigError(
            f"mailboxes.{mailbox_name}.incoming",
            "is not set, so this mailbox cannot fetch",
            "add [mailboxes.NAME.incoming] with transport = 'imap' (or pop3, graph, gmail_api)",
        )
    if deliver is None:
        if incoming.deliver is None:
            raise ConfigError(
                f"mailboxes.{mailbox_name}.incoming.deliver",
                "is not set, so fetched mail has nowhere to go",
                "set deliver = 'maildir:/path' or 'webhook:https://…' (CLI: --maildir DIR)",
            )
        deliver = handler_for(incoming.deliver, http=http)
    transport = incoming.transport
    ledger = StoreLedger(store, mailbox_name)
    base_url = ""
    if transport in (Transport.GRAPH, Transport.GMAIL_API):
        provider = await asyncio.to_thread(store.get_provider, mailbox.provider)
        base_url = api_url(mailbox, provider, "incoming")
    handler = deliver
    async with recording(store, mailbox, transport.value, debug=debug) as transcript:

        async def attempt(access: AccessToken) -> FetchReport:
            if transport in (Transport.IMAP, Transport.POP3):
                fetcher = fetch_imap if transport is Transport.IMAP else fetch_pop3
                return await fetcher(
                    incoming,
                    access.user,
                    access.token,
                    mailbox=mailbox_name,
                    deliver=handler,
                    ledger=ledger,
                    mechanism=mailbox.sasl_mechanism.value,
                    ca_file=ca_file,
                    timeout=timeout,
                    limit=limit,
                    transcript=transcript,
                )
            api = fetch_graph if transport is Transport.GRAPH else fetch_gmail
            return await api(
                http,
                access.token,
                base_url=base_url,
                mailbox=mailbox_name,
                folder=incoming.folder,
                after_fetch=incoming.after_fetch,
                deliver=handler,
                ledger=ledger,
                user=app_only_user(mailbox) if transport is Transport.GRAPH else None,
                limit=limit,
                transcript=transcript,
            )

        return await with_token(store, tokens, mailbox_name, attempt, transcript)
