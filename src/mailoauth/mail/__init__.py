"""Mail transports with OAuth2 logins: SMTP submission now (``smtp.py``, on aiosmtplib).

:func:`send` is what the rest of mailoauth calls: it reads the mailbox from the store,
completes the message's headers, gets an access token from the
:class:`~mailoauth.oauth.tokens.TokenService` and sends with
:func:`~mailoauth.mail.smtp.send_message`. A login refused for good (not "try again
later") usually means the cached token went bad before its expiry (revoked, rotated):
the token is refreshed once and the send tried once more.
"""

from __future__ import annotations

import asyncio
import copy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid

from mailoauth.errors import ConfigError, TokenRefused
from mailoauth.mail.smtp import send_message
from mailoauth.models import Mailbox
from mailoauth.oauth.tokens import TokenService
from mailoauth.providers import Transport
from mailoauth.store import Store

__all__ = ["prepare_message", "send", "send_message"]


def prepare_message(mailbox: Mailbox, message: EmailMessage) -> EmailMessage:
    """A copy of ``message`` with From (the mailbox's first address and display name),
    Reply-To, Message-ID and Date filled in where missing."""
    prepared = copy.deepcopy(message)
    address = mailbox.addresses[0] if mailbox.addresses else ""
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


async def send(
    store: Store,
    tokens: TokenService,
    mailbox_name: str,
    message: EmailMessage,
    *,
    ca_file: str | None = None,
    timeout: float = 30,
) -> None:
    """Send ``message`` from mailbox ``mailbox_name`` over its outgoing SMTP settings."""
    mailbox = await asyncio.to_thread(store.get_mailbox, mailbox_name)
    outgoing = mailbox.outgoing
    if outgoing is None or outgoing.transport is not Transport.SMTP:
        raise ConfigError(
            f"mailboxes.{mailbox_name}.outgoing",
            "is not SMTP, which is the only way mailoauth sends so far",
            "set outgoing.transport = 'smtp' with the server's host",
        )
    prepared = prepare_message(mailbox, message)
    mechanism = mailbox.sasl_mechanism.value
    for attempt in (1, 2):
        # A token the server refuses gets one refresh and one more try (it may have been
        # revoked or expired early); a second refusal is the answer.
        access = await (
            tokens.get_access_token(mailbox_name) if attempt == 1 else tokens.refresh(mailbox_name)
        )
        try:
            await send_message(
                outgoing,
                access.user,
                access.token,
                prepared,
                mechanism=mechanism,
                ca_file=ca_file,
                timeout=timeout,
            )
            return
        except TokenRefused as exc:
            if exc.temporary or attempt == 2:
                raise
