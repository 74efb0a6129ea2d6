"""Send one message over SMTP submission with an OAuth2 access token (aiosmtplib).

``send_message`` connects (implicit TLS, STARTTLS with a verified certificate, or plain
on a trusted network), says EHLO, checks the message against the server's ``SIZE``, logs
in with XOAUTH2 or OAUTHBEARER driven by the sans-I/O clients of :mod:`mailoauth.sasl`
through aiosmtplib's ``execute_command``, and sends. When the primary server cannot be
reached (refused, timed out, a 4xx greeting) the mailbox's ``alternate_host`` is tried.

Every failure is a :mod:`mailoauth.errors` exception naming the server and what to do;
no message or log line holds the token (only :meth:`Secret.reveal` inside the SASL
client sees it). Recipients are all-or-nothing: one refused ``RCPT`` resets the
transaction, so a retry never delivers twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from email.message import EmailMessage
from typing import NamedTuple

import aiosmtplib
from aiosmtplib.email import extract_recipients, extract_sender, flatten_message, parse_address

from mailoauth.errors import (
    ConfigError,
    MailConnectionError,
    MailError,
    MessageRefused,
    MessageTooLarge,
    RecipientsRefused,
    SenderRefused,
)
from mailoauth.mail.connect import ConnectOptions, close, connect, tls_context, where
from mailoauth.mail.mechanism import choose_client
from mailoauth.mail.transcript import Transcript
from mailoauth.models import OutgoingSettings
from mailoauth.providers import Transport
from mailoauth.sasl import SaslClient, decode, encode
from mailoauth.secret import Secret

__all__ = ["Session", "check_login", "envelope_of", "send_message", "session"]

_MAX_ROUNDS = 4  # the token mechanisms need at most one challenge


async def _authenticate(
    smtp: aiosmtplib.SMTP, client: SaslClient, timeout: float, transcript: Transcript
) -> None:
    name = client.mechanism.encode("ascii")
    reply = await smtp.execute_command(b"AUTH", name, encode(client.start()), timeout=timeout)
    rounds = 0
    while reply.code == 334 and rounds < _MAX_ROUNDS:
        rounds += 1
        step = client.receive(decode(reply.message.encode("ascii", "replace")))
        with transcript.authenticating():
            reply = await smtp.execute_command(encode(step.data), timeout=timeout)
    text = f"{reply.code} {reply.message}"
    if reply.code == 235:
        client.finish(True, text)
        return
    if reply.code == 334:  # a server that keeps challenging: cancel (RFC 4954 §4)
        with suppress(aiosmtplib.SMTPException):
            await smtp.execute_command(b"*", timeout=timeout)
    client.finish(False, text, temporary=400 <= reply.code < 500)


def _too_large(size: int, limit: int, host: str, port: int) -> MessageTooLarge:
    most = f"at most {limit} bytes" if limit else "less"
    return MessageTooLarge(
        f"the message is {size} bytes and {where(host, port)} accepts {most}; "
        "send smaller attachments or a link instead",
        size=size,
        limit=limit,
        host=host,
        port=port,
    )


class _Wire(NamedTuple):
    """The envelope and the flattened message, ready for MAIL / RCPT / DATA."""

    sender: str
    recipients: list[str]
    data: bytes
    options: list[str]
    encoding: str


def envelope_of(message: EmailMessage) -> tuple[str, list[str]]:
    """The envelope the headers give (From or Sender; To, Cc, Bcc); ConfigError if bad."""
    recipients = extract_recipients(message)
    return _check_addresses(extract_sender(message), recipients), recipients


def _check_addresses(sender: str | None, recipients: Sequence[str]) -> str:
    if not sender:
        raise ConfigError("message.From", "is missing", "set a From (or Sender) header")
    if not recipients:
        raise ConfigError("message.To", "names no recipient", "set To, Cc or Bcc")
    for field, address in [("From", sender)] + [("To", r) for r in recipients]:
        try:
            parse_address(address)
        except ValueError:
            raise ConfigError(
                f"message.{field}", f"{address!r} is not an address", "write local-part@domain"
            ) from None
    return sender


def _wire(smtp: aiosmtplib.SMTP, message: EmailMessage, host: str, port: int) -> _Wire:
    """Flatten for what the server supports; refuse early when it cannot take it."""
    return _wire_to(smtp, message, *envelope_of(message), host, port)


def _wire_to(
    smtp: aiosmtplib.SMTP,
    message: EmailMessage,
    sender: str,
    recipients: list[str],
    host: str,
    port: int,
) -> _Wire:
    """:func:`_wire` for a given envelope (a queued message keeps the one it came with)."""
    utf8 = not (sender + "".join(recipients)).isascii()
    if utf8 and not smtp.supports_extension("smtputf8"):
        raise MessageRefused(
            f"{where(host, port)} does not support SMTPUTF8, which the non-ASCII addresses "
            "need; use ASCII addresses",
            host=host,
            port=port,
        )
    eight = smtp.supports_extension("8bitmime")
    data = flatten_message(message, utf8=utf8, cte_type="8bit" if eight else "7bit")
    options = ["BODY=8BITMIME"] if eight else []
    if utf8:
        options.append("SMTPUTF8")
    if smtp.supports_extension("size"):  # RFC 1870
        limit_text = smtp.esmtp_extensions.get("size", "").strip()
        limit = int(limit_text) if limit_text.isdigit() else 0
        if limit and len(data) > limit:
            raise _too_large(len(data), limit, host, port)
        options.insert(0, f"SIZE={len(data)}")
    return _Wire(sender, recipients, data, options, "utf-8" if utf8 else "ascii")


async def _transfer(smtp: aiosmtplib.SMTP, wire: _Wire, host: str, port: int) -> None:
    server, size = where(host, port), len(wire.data)
    try:
        await smtp.mail(wire.sender, options=wire.options, encoding=wire.encoding)
    except aiosmtplib.SMTPSenderRefused as exc:
        if exc.code == 552:
            raise _too_large(size, 0, host, port) from None
        raise SenderRefused(
            f"{server} refused the sender {wire.sender} ({exc.code} {exc.message}); "
            "send from an address the login may use (mailbox addresses)",
            host=host,
            port=port,
            code=exc.code,
            temporary=exc.code < 500,
        ) from None
    refused: dict[str, str] = {}
    for recipient in wire.recipients:
        try:
            await smtp.rcpt(recipient, encoding=wire.encoding)
        except aiosmtplib.SMTPRecipientRefused as exc:
            refused[recipient] = f"{exc.code} {exc.message}"
    if refused:
        with suppress(aiosmtplib.SMTPException):
            await smtp.rset()
        named = "; ".join(f"{who}: {why}" for who, why in refused.items())
        raise RecipientsRefused(
            f"{server} refused {len(refused)} of {len(wire.recipients)} recipients ({named}); "
            "nothing was sent: correct or remove them and send again",
            refused=refused,
            host=host,
            port=port,
            temporary=all(why.startswith("4") for why in refused.values()),
        )
    try:
        await smtp.data(wire.data)
    except aiosmtplib.SMTPDataError as exc:
        if exc.code == 552:
            raise _too_large(size, 0, host, port) from None
        raise MessageRefused(
            f"{server} refused the message ({exc.code} {exc.message})",
            host=host,
            port=port,
            code=exc.code,
            temporary=exc.code < 500,
        ) from None


@dataclass(frozen=True)
class Session:
    """An open, EHLO'd (and TLS'd) SMTP connection, not yet logged in."""

    smtp: aiosmtplib.SMTP
    host: str
    port: int
    transcript: Transcript
    timeout: float

    async def login(self, mechanism: str, user: str, token: Secret) -> str:
        """AUTH with the chosen mechanism; returns its name."""
        smtp, host, port = self.smtp, self.host, self.port
        client = choose_client(smtp.server_auth_methods, mechanism, user, token, host, port)
        await _authenticate(smtp, client, self.timeout, self.transcript)
        return client.mechanism

    def detach(self) -> Detached:
        """Take the (logged-in) connection out of aiosmtplib's hands, for a caller that
        speaks SMTP on it itself (the passthrough relay); the session's context then
        neither QUITs nor closes it. Reads aiosmtplib's receive buffer, which is empty
        after a complete reply (a reply nobody asked for would be in it)."""
        smtp = self.smtp
        protocol, transport = smtp.protocol, smtp.transport
        if protocol is None or not isinstance(transport, asyncio.Transport):
            raise MailConnectionError(
                f"the connection to {where(self.host, self.port)} is gone",
                host=self.host,
                port=self.port,
            )
        leftover = bytes(protocol._buffer)
        protocol.transport = None  # so that closing the session waits for nothing
        smtp.protocol = None
        smtp.transport = None
        extensions = frozenset(name.lower() for name in smtp.esmtp_extensions)
        return Detached(transport, extensions, self.host, self.port, leftover)


@dataclass(frozen=True)
class Detached:
    """A connection taken from aiosmtplib (:meth:`Session.detach`): the transport, the
    server's EHLO extensions (lower case), where it goes, and bytes already received."""

    transport: asyncio.Transport
    extensions: frozenset[str]
    host: str
    port: int
    leftover: bytes


@asynccontextmanager
async def session(
    settings: OutgoingSettings,
    token: Secret,
    *,
    ca_file: str | None,
    timeout: float,
    transcript: Transcript | None,
) -> AsyncIterator[Session]:
    """Connect (the alternate host if the first cannot be reached), translate
    aiosmtplib's failures into :mod:`mailoauth.errors`, QUIT at the end."""
    if settings.transport is not Transport.SMTP or not settings.host or not settings.port:
        raise ConfigError("outgoing.transport", "is not smtp with a host", "set host and port")
    targets = [(settings.host, settings.port)]
    if settings.alternate_host:
        targets.append((settings.alternate_host, settings.alternate_port or settings.port))
    transcript = transcript or Transcript("smtp", enabled=False)
    transcript.hide(token)
    options = ConnectOptions(tls_context(ca_file), timeout, settings.ehlo_name, transcript)
    smtp, host, port = await connect(targets, settings.security, options)
    try:
        yield Session(smtp, host, port, transcript, timeout)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError) as exc:
        raise MailConnectionError(
            f"the connection to {where(host, port)} broke off ({exc}); retry later",
            host=host,
            port=port,
        ) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise MailError(
            f"{where(host, port)} answered {exc.code} {exc.message}; "
            "it does not take mail this way: check outgoing.host and outgoing.port",
            host=host,
            port=port,
            code=exc.code,
            temporary=400 <= exc.code < 500,
        ) from None
    finally:
        protocol = smtp.protocol  # quit() forgets it; close() waits for it to be gone
        if smtp.is_connected:
            with suppress(aiosmtplib.SMTPException, OSError):
                await smtp.quit(timeout=min(timeout, 5))
        await close(smtp, protocol)


async def send_message(
    settings: OutgoingSettings,
    user: str,
    token: Secret,
    message: EmailMessage,
    *,
    mechanism: str = "auto",
    ca_file: str | None = None,
    timeout: float = 30,
    transcript: Transcript | None = None,
) -> None:
    """Send ``message`` to its To/Cc/Bcc as ``user`` with ``token``; raises
    :class:`~mailoauth.errors.SaslError` when the login is refused (``temporary`` for a
    4xx), :class:`~mailoauth.errors.MailError` subclasses for the rest."""
    envelope_of(message)  # bad input fails before connecting
    async with session(
        settings, token, ca_file=ca_file, timeout=timeout, transcript=transcript
    ) as open_:
        wire = _wire(open_.smtp, message, open_.host, open_.port)  # size check before login
        await open_.login(mechanism, user, token)
        await _transfer(open_.smtp, wire, open_.host, open_.port)


async def check_login(
    settings: OutgoingSettings,
    user: str,
    token: Secret,
    *,
    mechanism: str = "auto",
    ca_file: str | None = None,
    timeout: float = 30,
    transcript: Transcript | None = None,
) -> str:
    """Connect, TLS, AUTH, QUIT — what ``mailoauth test`` checks; says what worked."""
    async with session(
        settings, token, ca_file=ca_file, timeout=timeout, transcript=transcript
    ) as open_:
        used = await open_.login(mechanism, user, token)
        return f"{where(open_.host, open_.port)} ({settings.security.value}): AUTH {used} accepted"
