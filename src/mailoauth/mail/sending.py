"""``send``: one message from a mailbox, over the transport its settings name.

SMTP submission (:mod:`.smtp`), Microsoft Graph ``sendMail`` (:mod:`.graph`) or the Gmail
API ``messages.send`` (:mod:`.gmail`). Headers are completed first (:func:`prepare_message`),
the token comes from the :class:`~mailoauth.oauth.tokens.TokenService` and a refused token
is refreshed once (:func:`.auth.with_token`).
"""

from __future__ import annotations

import asyncio
import copy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr, formatdate, getaddresses, make_msgid

import httpx

from mailoauth.errors import ConfigError
from mailoauth.mail.auth import recording, with_token
from mailoauth.mail.gmail import send_gmail
from mailoauth.mail.graph import send_graph
from mailoauth.mail.smtp import send_message
from mailoauth.models import Mailbox, Provider
from mailoauth.oauth.tokens import AccessToken, TokenService
from mailoauth.providers import GrantType, Transport, api_base_url
from mailoauth.store import Store

__all__ = ["api_url", "app_only_user", "prepare_message", "send"]


def prepare_message(mailbox: Mailbox, message: EmailMessage) -> EmailMessage:
    """A copy of ``message`` with From (the mailbox's first address and display name),
    Reply-To, Message-ID and Date filled in where missing."""
    prepared = copy.deepcopy(message)
    address = mailbox.addresses[0] if mailbox.addresses else ""
    _check_sender(mailbox, prepared)
    if prepared["From"] is None:
        if not address:
            raise ConfigError(
                f"mailboxes.{mailbox.name}.addresses",
                "is empty, so the message has no From",
                "add the mailbox's address, or set From in the message",
            )
        prepared["From"] = formataddr((mailbox.display_name, address))
    if prepared["Reply-To"] is None and mailbox.reply_to:
        prepared["Reply-To"] = mailbox.reply_to
    if prepared["Message-ID"] is None:
        domain = Address(addr_spec=address).domain if "@" in address else None
        prepared["Message-ID"] = make_msgid(domain=domain)
    if prepared["Date"] is None:
        prepared["Date"] = formatdate(localtime=True)
    return prepared


def _check_sender(mailbox: Mailbox, message: EmailMessage) -> None:
    """A From (or Sender) the caller set must be one of the mailbox's addresses: the
    provider would refuse anything else (or, worse, rewrite it), and an alias list is
    how an admin says which identities an application may use."""
    allowed = {a.lower() for a in mailbox.addresses}
    for header in ("From", "Sender"):
        for value in message.get_all(header, []):
            for _, addr in getaddresses([str(value)]):
                if addr and addr.lower() not in allowed:
                    raise ConfigError(
                        f"message.{header}",
                        f"{addr} is not one of mailbox {mailbox.name!r}'s addresses "
                        f"({', '.join(mailbox.addresses) or 'none'})",
                        "leave From unset, or add the alias to the mailbox's addresses",
                    )


def api_url(mailbox: Mailbox, provider: Provider, direction: str) -> str:
    """The Graph / Gmail API base URL for the mailbox's ``outgoing`` or ``incoming``."""
    settings = mailbox.outgoing if direction == "outgoing" else mailbox.incoming
    assert settings is not None
    url = api_base_url(
        provider.kind, settings.transport, provider.cloud, settings.host, settings.port
    )
    if url is None:
        raise ConfigError(
            f"mailboxes.{mailbox.name}.{direction}.host",
            f"is needed: provider {provider.name!r} has no preset host for "
            f"{settings.transport.value}",
            "set the API's host name",
        )
    return url


def app_only_user(mailbox: Mailbox) -> str | None:
    """Graph's ``/users/{id}`` for app-only tokens (client credentials); None = ``/me``."""
    return mailbox.login if mailbox.grant is GrantType.CLIENT_CREDENTIALS else None


async def send(
    store: Store,
    tokens: TokenService,
    mailbox_name: str,
    message: EmailMessage,
    *,
    http: httpx.AsyncClient | None = None,
    ca_file: str | None = None,
    timeout: float = 30,
    debug: bool = False,
) -> EmailMessage:
    """Send ``message`` from mailbox ``mailbox_name``; returns the message as sent (with
    the headers that were filled in). ``http`` is needed for the Graph and Gmail APIs."""
    mailbox = await asyncio.to_thread(store.get_mailbox, mailbox_name)
    outgoing = mailbox.outgoing
    if outgoing is None:
        raise ConfigError(
            f"mailboxes.{mailbox_name}.outgoing",
            "is not set, so this mailbox cannot send",
            "add [mailboxes.NAME.outgoing] with transport = 'smtp' (or graph / gmail_api)",
        )
    prepared = prepare_message(mailbox, message)
    transport = outgoing.transport
    base_url = ""
    if transport is not Transport.SMTP:
        provider = await asyncio.to_thread(store.get_provider, mailbox.provider)
        base_url = api_url(mailbox, provider, "outgoing")
        if http is None:
            raise ConfigError("http", f"is needed to send over {transport.value}", "pass one")
    async with recording(store, mailbox, transport.value, debug=debug) as transcript:

        async def attempt(access: AccessToken) -> None:
            if transport is Transport.SMTP:
                await send_message(
                    outgoing,
                    access.user,
                    access.token,
                    prepared,
                    mechanism=mailbox.sasl_mechanism.value,
                    ca_file=ca_file,
                    timeout=timeout,
                    transcript=transcript,
                )
            elif transport is Transport.GRAPH:
                assert http is not None
                await send_graph(
                    http,
                    access.token,
                    prepared,
                    base_url=base_url,
                    user=app_only_user(mailbox),
                    transcript=transcript,
                )
            else:
                assert http is not None
                await send_gmail(
                    http, access.token, prepared, base_url=base_url, transcript=transcript
                )

        await with_token(store, tokens, mailbox_name, attempt, transcript)
    return prepared
