"""Deliver one mailbox's claimed messages over its transport, one connection (or one API
client) and one token for all of them, and settle each message the moment its outcome
is known — a message is marked sent right after the upstream accepted it, before the
next one goes, so a crash re-sends at most the message in flight.

Over SMTP the batch shares one login (:func:`~mailoauth.mail.smtp.send_each`); over
Graph and the Gmail API it is one request per message. An error that concerns one
message (a refused recipient, too large) settles that message; one that concerns the
mailbox (no connection, the token refused after the refresh-once, no usable grant)
settles every message not settled yet, and is reported as the mailbox's problem. A
refused token is refreshed once for the batch (:func:`~mailoauth.mail.auth.with_token`);
the retry sends only what was not settled yet.

The HTTPS APIs take the recipients from the headers: an envelope recipient missing from
them (a relay's Bcc) is added as ``Bcc``, which both APIs remove before delivery.
"""

from __future__ import annotations

import asyncio
import email.policy
from collections.abc import Awaitable, Callable
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses

import httpx

from mailoauth.errors import ConfigError, MailoauthError, MessageRefused, StoreError
from mailoauth.mail.auth import recording, with_token
from mailoauth.mail.gmail import send_gmail
from mailoauth.mail.graph import send_graph
from mailoauth.mail.sending import api_url, app_only_user
from mailoauth.mail.smtp_batch import Envelope, send_each
from mailoauth.mail.transcript import Transcript
from mailoauth.models import Mailbox
from mailoauth.oauth.tokens import AccessToken, TokenService
from mailoauth.providers import Transport
from mailoauth.store import QueuedMessage, Store

__all__ = ["Claimed", "Settle", "deliver_mailbox", "parse"]

Claimed = tuple[QueuedMessage, bytes]
#: ``settle(entry, error)``: record the outcome of one attempt (None: accepted upstream).
Settle = Callable[[QueuedMessage, MailoauthError | None], Awaitable[None]]


def parse(data: bytes) -> EmailMessage:
    message = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


class _Batch:
    """The messages of one mailbox not settled yet, in order."""

    def __init__(self, claimed: list[Claimed], settle: Settle) -> None:
        self.waiting = {entry.id: (entry, parse(data)) for entry, data in claimed}
        self._settle = settle

    def items(self) -> list[tuple[QueuedMessage, EmailMessage]]:
        return list(self.waiting.values())

    async def done(self, entry: QueuedMessage, error: MailoauthError | None) -> None:
        await self._settle(entry, error)
        del self.waiting[entry.id]


#: A transport's way of sending what is left of a batch with one access token.
Send = Callable[[AccessToken, _Batch, Transcript], Awaitable[None]]


async def deliver_mailbox(
    store: Store,
    tokens: TokenService,
    http: httpx.AsyncClient | None,
    name: str,
    claimed: list[Claimed],
    settle: Settle,
    *,
    ca_file: str | None = None,
    timeout: float = 30,
    debug: bool = False,
) -> str | None:
    """Send ``claimed`` (all of mailbox ``name``) and settle each; returns what stopped
    the whole batch (None when every message got its own outcome). Store failures and
    anything unexpected propagate: the claim's lease runs out, another run takes over."""
    batch = _Batch(claimed, settle)
    try:
        mailbox = await asyncio.to_thread(store.get_mailbox, name)
        send = await _transport(store, mailbox, http, ca_file, timeout)
        async with recording(store, mailbox, _protocol(mailbox), debug=debug) as transcript:

            async def attempt(access: AccessToken) -> None:
                await send(access, batch, transcript)

            await with_token(store, tokens, name, attempt, transcript)
    except StoreError:
        raise
    except MailoauthError as exc:
        for entry, _ in batch.items():
            await batch.done(entry, exc)
        return f"{name}: {exc}"
    return None


def _protocol(mailbox: Mailbox) -> str:
    return mailbox.outgoing.transport.value if mailbox.outgoing else "smtp"


async def _transport(
    store: Store,
    mailbox: Mailbox,
    http: httpx.AsyncClient | None,
    ca_file: str | None,
    timeout: float,
) -> Send:
    """The mailbox's way of sending a batch, or ConfigError when it has none."""
    outgoing = mailbox.outgoing
    if outgoing is None:
        raise ConfigError(
            f"mailboxes.{mailbox.name}.outgoing",
            "is not set any more, so the queued messages cannot be sent",
            "set it again and `mailoauth queue retry` them",
        )
    if outgoing.transport is Transport.SMTP:

        async def smtp(access: AccessToken, batch: _Batch, transcript: Transcript) -> None:
            items = batch.items()

            async def outcome(index: int, error: MessageRefused | ConfigError | None) -> None:
                await batch.done(items[index][0], error)

            envelopes = [Envelope(msg, e.sender, list(e.recipients)) for e, msg in items]
            await send_each(
                outgoing,
                access.user,
                access.token,
                envelopes,
                outcome,
                mechanism=mailbox.sasl_mechanism.value,
                ca_file=ca_file,
                timeout=timeout,
                transcript=transcript,
            )

        return smtp
    provider = await asyncio.to_thread(store.get_provider, mailbox.provider)
    base_url = api_url(mailbox, provider, "outgoing")
    if http is None:
        raise ConfigError("http", f"is needed to send over {outgoing.transport.value}", "pass one")
    client = http
    graph = outgoing.transport is Transport.GRAPH

    async def api(access: AccessToken, batch: _Batch, transcript: Transcript) -> None:
        for entry, message in batch.items():
            message = _with_envelope(message, entry.recipients)
            try:
                if graph:
                    user = app_only_user(mailbox)
                    await send_graph(
                        client,
                        access.token,
                        message,
                        base_url=base_url,
                        user=user,
                        transcript=transcript,
                    )
                else:
                    await send_gmail(
                        client, access.token, message, base_url=base_url, transcript=transcript
                    )
            except (MessageRefused, ConfigError) as exc:
                await batch.done(entry, exc)
            else:
                await batch.done(entry, None)

    return api


def _with_envelope(message: EmailMessage, recipients: tuple[str, ...]) -> EmailMessage:
    """``message`` with every envelope recipient the headers lack added to ``Bcc``."""
    headers = [str(v) for h in ("To", "Cc", "Bcc") for v in message.get_all(h, [])]
    present = {address.lower() for _, address in getaddresses(headers)}
    missing = [r for r in recipients if r.lower() not in present]
    if missing:
        bcc = [str(v) for v in message.get_all("Bcc", [])]
        del message["Bcc"]
        message["Bcc"] = ", ".join(bcc + missing)
    return message
