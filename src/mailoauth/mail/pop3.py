"""Fetch a POP3 inbox with an OAuth2 login: RFC 1939 (with RFC 2449 CAPA, RFC 2595 STLS,
RFC 5034 AUTH) over :class:`~mailoauth.mail.stream.MailStream`, parsed by
:mod:`mailoauth.protocols.pop3`, logged in by the SASL clients of :mod:`mailoauth.sasl`.

Crash safety. POP3 removes nothing before QUIT: ``DELE`` only marks a message, and the
marks are carried out when QUIT moves the session to the UPDATE state (RFC 1939 §6). A
session that ends any other way — the process killed, the task cancelled, the
connection lost — leaves the maildrop exactly as it was. One run therefore goes::

    UIDL                    the server's unique-ids; the seen set is trimmed to them
    DELE n                  (after_fetch = delete) for seen messages still present
    for each new message, in message-number order, at most ``limit``:
        RETR n; deliver()   raises: stop here; nothing is marked for this message
        DELE n              (after_fetch = delete)
        ledger.add_seen()
    QUIT                    when the run ends, a refused message included: commits DELEs

A message is marked for deletion only after the handler accepted it, so whatever fails
when, nothing is lost. A crash after ``add_seen`` but before QUIT rolls the DELEs back:
those messages are still on the server *and* in the seen set, so the next run deletes
them (the second step above) without delivering them again. A crash between ``deliver``
and ``add_seen`` delivers that one message again next time (at least once, as
:mod:`.fetched` says). Without UIDL the messages cannot be told apart between runs, so a
server lacking it is refused rather than fetched twice.

Errors name the server (``host:port``) and never hold the token; the transcript hides it
(clear and base64) and redacts the ``AUTH`` line and every SASL continuation line.
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from mailoauth.errors import (
    ConfigError,
    MailConnectionError,
    MailError,
    MailoauthError,
    RemoteProtocolError,
    SaslError,
)
from mailoauth.mail.connect import tls_context, where
from mailoauth.mail.fetched import Deliver, FetchedMessage, FetchLedger, FetchReport
from mailoauth.mail.mechanism import choose_client
from mailoauth.mail.stream import MailStream, open_stream
from mailoauth.mail.transcript import Transcript
from mailoauth.models import IncomingSettings
from mailoauth.protocols import pop3
from mailoauth.providers import Security, Transport
from mailoauth.sasl import decode
from mailoauth.secret import Secret

__all__ = ["check_pop3", "fetch_pop3", "open_pop3"]

INBOX: Final = "INBOX"  # POP3 reads the one maildrop; the ledger keeps it under this name
_CHUNK: Final = 64 * 1024
_MAX_ROUNDS: Final = 4  # the token mechanisms need at most two continuations
_BUSY: Final = frozenset({"IN-USE", "LOGIN-DELAY"})  # RFC 2449 §8.1: the login was fine


class _Session:
    """One POP3 connection: commands out through the stream, events in through the
    sans-I/O client, every answer offered to the transcript."""

    def __init__(self, stream: MailStream) -> None:
        self.stream = stream
        self.protocol = pop3.Pop3Client()

    @property
    def where(self) -> str:
        return self.stream.where

    async def event(self) -> pop3.Event:
        while (event := self.protocol.next_event()) is None:
            self.protocol.receive_data(await self.stream.read_some(_CHUNK))
        if self.stream.transcript.enabled:  # else no need to copy a large body
            if isinstance(event, pop3.Continuation):
                shown = b"+ " + event.data + b"\r\n"
            else:
                shown = event.describe(1000).encode() + b"\r\n" + (event.body or b"")
            self.stream.transcript.server(shown)
        return event

    async def response(self) -> pop3.Response:
        event = await self.event()
        assert isinstance(event, pop3.Response)  # the parser allows "+ " only after AUTH
        return event

    async def command(self, command: pop3.Command) -> pop3.Response:
        await self.stream.write(self.protocol.send(command))
        return await self.response()

    async def ok(self, command: pop3.Command, doing: str) -> pop3.Response:
        response = await self.command(command)
        if not response.ok:
            raise self.refused(doing, response)
        return response

    def refused(self, doing: str, response: pop3.Response) -> MailError:
        then = "retry later" if response.temporary else "check the mailbox on the server"
        return MailError(
            f"{self.where} refused {doing} ({response.describe()}); {then}",
            host=self.stream.host,
            port=self.stream.port,
            temporary=response.temporary,
        )

    async def capabilities(self) -> pop3.Capabilities:
        response = await self.command(pop3.CAPA)
        if response.ok and response.body is not None:
            return pop3.parse_capa(response.body)
        return pop3.Capabilities()  # no CAPA (RFC 2449 is optional): nothing advertised


async def _start(session: _Session, security: Security, context: ssl.SSLContext) -> list[str]:
    """Greeting, CAPA, STLS (RFC 2595 §4) when asked for; the mechanisms offered."""
    stream = session.stream
    greeting = await session.response()
    if not greeting.ok:
        raise MailConnectionError(
            f"{session.where} did not greet as a POP3 server ({greeting.describe()}); "
            "check incoming.host and incoming.port, or retry later",
            host=stream.host,
            port=stream.port,
        )
    capabilities = await session.capabilities()
    if security is Security.STARTTLS:
        if "STLS" not in capabilities.tags:
            raise MailConnectionError(
                f"{session.where} does not offer STLS, so the token would go in clear text; "
                "use the server's POP3S port (995) with incoming.security = 'ssl'",
                host=stream.host,
                port=stream.port,
                tls=True,
            )
        response = await session.command(pop3.STLS)
        if session.protocol.buffered:  # RFC 2595 §4: would be read as if sent over TLS
            raise MailConnectionError(
                f"{session.where} sent data after its STLS answer, before the TLS handshake; "
                "someone may be tampering with the connection: use incoming.security = 'ssl'",
                host=stream.host,
                port=stream.port,
                tls=True,
            )
        if not response.ok:
            raise MailConnectionError(
                f"{session.where} did not start TLS ({response.describe()}); "
                "use the server's POP3S port (995) with incoming.security = 'ssl'",
                host=stream.host,
                port=stream.port,
                tls=True,
            )
        await stream.start_tls(context)
        capabilities = await session.capabilities()  # RFC 2595 §4: ask again after TLS
    return list(capabilities.sasl)


async def _login(
    session: _Session, offered: list[str], user: str, token: Secret, mechanism: str
) -> None:
    """AUTH (RFC 5034 §4) with XOAUTH2 or OAUTHBEARER. The initial response goes on the
    AUTH line only when the line stays within 255 octets; otherwise after the first
    ``+ ``. A rejected token's error challenge is acknowledged, then the -ERR read."""
    stream, transcript = session.stream, session.stream.transcript
    client = choose_client(offered, mechanism, user, token, stream.host, stream.port)
    name = client.mechanism
    initial = client.start()
    pending: bytes | None = None  # the initial response, when it waits for "+ "
    if pop3.auth_fits(name, initial):
        command = pop3.auth(name, initial)
    else:
        command, pending = pop3.auth(name), initial
    await stream.write(session.protocol.send(command))
    event = await session.event()
    rounds = 0
    while isinstance(event, pop3.Continuation) and rounds < _MAX_ROUNDS:
        rounds += 1
        if pending is not None:  # the server's empty prompt for the initial response
            if event.data:
                raise RemoteProtocolError(
                    f"the server sent a {name} challenge before the initial response, where "
                    "only an empty '+ ' may come; it does not follow RFC 5034"
                )
            data, pending = pending, None
        else:
            data = client.receive(decode(event.data)).data
        with transcript.authenticating():
            await stream.write(session.protocol.auth_response(data))
        event = await session.event()
    if isinstance(event, pop3.Continuation):
        await stream.write(session.protocol.auth_response(None))
        await session.event()  # its -ERR to "*"; the login failed either way
        raise RemoteProtocolError(
            f"the server kept sending {name} challenges ({rounds}); it does not follow the "
            "mechanism, so the login was given up"
        )
    if event.ok:
        client.finish(True, event.describe())
        return
    if event.code in _BUSY:
        raise MailError(
            f"{session.where} accepted the login but will not open the mailbox now "
            f"({event.describe()}): another session uses it or it was opened too recently; "
            "retry later",
            host=stream.host,
            port=stream.port,
            temporary=True,
        )
    client.finish(False, event.describe(), temporary=event.temporary)


def _target(settings: IncomingSettings) -> tuple[str, int]:
    if settings.transport is not Transport.POP3 or not settings.host or not settings.port:
        raise ConfigError(
            "incoming.transport", "is not pop3 with a host and port", "set host and port"
        )
    return settings.host, settings.port


def _located(host: str, port: int, exc: SaslError | RemoteProtocolError) -> MailoauthError:
    """``exc`` again, its message starting with the server it came from."""
    if isinstance(exc, SaslError):
        return SaslError(
            f"{where(host, port)}: {exc}",
            mechanism=exc.mechanism,
            status=exc.status,
            scope=exc.scope,
            server_message=exc.server_message,
            temporary=exc.temporary,
        )
    return RemoteProtocolError(f"{where(host, port)}: {exc}")


async def _open(
    settings: IncomingSettings,
    user: str,
    token: Secret,
    mechanism: str,
    ca_file: str | None,
    timeout: float,
    transcript: Transcript,
) -> _Session:
    """Connect, STLS when asked, log in; the stream is closed if any of it fails."""
    host, port = _target(settings)
    transcript.hide(token)
    context = tls_context(ca_file)
    stream = await open_stream(
        host, port, settings.security, context, timeout=timeout, transcript=transcript
    )
    try:
        session = _Session(stream)
        offered = await _start(session, settings.security, context)
        await _login(session, offered, user, token, mechanism)
    except (SaslError, RemoteProtocolError) as exc:
        await stream.close()
        raise _located(host, port, exc) from None
    except BaseException:
        await stream.close()
        raise
    return session


@asynccontextmanager
async def _logged_in(
    settings: IncomingSettings,
    user: str,
    token: Secret,
    mechanism: str,
    ca_file: str | None,
    timeout: float,
    transcript: Transcript,
) -> AsyncIterator[_Session]:
    """A connected, logged-in session, closed on the way out (without QUIT: only the
    caller knows whether the session's DELEs are to be committed)."""
    session = await _open(settings, user, token, mechanism, ca_file, timeout, transcript)
    try:
        yield session
    except RemoteProtocolError as exc:
        raise _located(*_target(settings), exc) from None
    finally:
        await session.stream.close()


async def open_pop3(
    settings: IncomingSettings,
    user: str,
    token: Secret,
    *,
    mechanism: str = "auto",
    ca_file: str | None = None,
    timeout: float = 30,
    transcript: Transcript | None = None,
) -> MailStream:
    """Connect, STLS when asked, log in, and hand over the open stream (for the relay,
    which passes the client's bytes through it). The caller QUITs and closes it. Raises
    what :func:`fetch_pop3` raises for the login; nothing the server sent is left unread."""
    transcript = transcript or Transcript("pop3", enabled=False)
    session = await _open(settings, user, token, mechanism, ca_file, timeout, transcript)
    if session.protocol.buffered:
        await session.stream.close()
        unasked = RemoteProtocolError("the server sent data after its login reply, unasked")
        raise _located(*_target(settings), unasked)
    return session.stream


async def _fetch(
    session: _Session,
    settings: IncomingSettings,
    mailbox: str,
    deliver: Deliver,
    ledger: FetchLedger,
    limit: int | None,
) -> FetchReport:
    response = await session.command(pop3.uidl())
    if not response.ok:
        raise MailError(
            f"{session.where} does not support UIDL ({response.describe()}), so it cannot "
            "tell messages apart between runs and every fetch would deliver the whole inbox "
            "again; fetch this mailbox over IMAP instead",
            host=session.stream.host,
            port=session.stream.port,
        )
    listing = pop3.parse_uidl(response.body or b"")
    seen = await ledger.seen(INBOX)
    await ledger.keep_seen(INBOX, [item.uid for item in listing])
    report = FetchReport(mailbox, INBOX)
    delete = settings.after_fetch == "delete"
    new = [item for item in listing if item.uid not in seen]
    report.skipped = len(listing) - len(new)
    if delete:  # delivered by a run that ended before its QUIT: delete, do not deliver
        for item in listing:
            if item.uid in seen:
                await session.ok(pop3.dele(item.number), f"DELE {item.number}")
                report.actions += 1
    for item in new if limit is None else new[:limit]:
        if error := await _take(session, item, deliver, ledger, report, delete=delete):
            report.error = error
            break
    report.remaining = len(new) - len(report.delivered)
    return report


async def _take(
    session: _Session,
    item: pop3.UniqueId,
    deliver: Deliver,
    ledger: FetchLedger,
    report: FetchReport,
    *,
    delete: bool,
) -> str | None:
    """RETR, deliver, DELE, remember one message; what went wrong, if anything."""
    response = await session.command(pop3.retr(item.number))
    if not response.ok:
        return str(session.refused(f"RETR {item.number}", response))
    try:
        await deliver(FetchedMessage(report.mailbox, INBOX, item.uid, response.body or b""))
    except Exception as exc:
        return (
            f"the handler did not take message {item.uid} ({type(exc).__name__}: {exc}); "
            "it stays on the server and is offered again next time"
        )
    report.delivered.append(item.uid)
    error = None
    if delete:
        response = await session.command(pop3.dele(item.number))
        if response.ok:
            report.actions += 1
        else:  # delivered all the same: remembered below, and deleted by a later run
            error = str(session.refused(f"DELE {item.number}", response))
    await ledger.add_seen(INBOX, item.uid)
    return error


async def _quit(session: _Session, report: FetchReport) -> None:
    """QUIT commits the DELEs (RFC 1939 §6); a refusal leaves them undone."""
    try:
        response = await session.command(pop3.QUIT)
    except MailConnectionError as exc:
        response = pop3.Response(False, f"no answer: {exc}")
    if not response.ok and report.actions:
        report.actions = 0
        report.error = report.error or (
            f"{session.where} did not confirm QUIT ({response.describe()}), so the messages "
            "of this run may not have been deleted; the next run deletes what is left"
        )


async def fetch_pop3(
    settings: IncomingSettings,
    user: str,
    token: Secret,
    *,
    mailbox: str,
    deliver: Deliver,
    ledger: FetchLedger,
    mechanism: str = "auto",
    ca_file: str | None = None,
    timeout: float = 30,
    limit: int | None = None,
    transcript: Transcript | None = None,
) -> FetchReport:
    """Hand each new message of the POP3 inbox to ``deliver``, oldest first, at most
    ``limit``; delete what was delivered when ``settings.after_fetch`` is ``delete``.
    Raises :class:`~mailoauth.errors.SaslError` for a refused login (``temporary`` for
    ``-ERR [SYS/TEMP]``), :class:`~mailoauth.errors.MailError` subclasses for the rest;
    a handler that raises ends the run early with ``report.error`` set."""
    if limit is not None and limit < 0:
        raise ConfigError("limit", f"{limit!r} is not a number of messages", "give 0 or more")
    transcript = transcript or Transcript("pop3", enabled=False)
    async with _logged_in(
        settings, user, token, mechanism, ca_file, timeout, transcript
    ) as session:
        report = await _fetch(session, settings, mailbox, deliver, ledger, limit)
        await _quit(session, report)
    return report


async def check_pop3(
    settings: IncomingSettings,
    user: str,
    token: Secret,
    *,
    mechanism: str = "auto",
    ca_file: str | None = None,
    timeout: float = 30,
    transcript: Transcript | None = None,
) -> int:
    """Log in and return how many messages the inbox holds (STAT); changes nothing."""
    transcript = transcript or Transcript("pop3", enabled=False)
    async with _logged_in(
        settings, user, token, mechanism, ca_file, timeout, transcript
    ) as session:
        response = await session.ok(pop3.STAT, "STAT")
        count = pop3.parse_stat(response.text).messages
        await session.command(pop3.QUIT)
    return count
