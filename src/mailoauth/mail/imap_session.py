"""One IMAP connection for :mod:`.imap`: greeting, STARTTLS, CAPABILITY, AUTHENTICATE
with an OAuth2 token (RFC 9051 §6.1-6.2, RFC 4959 SASL-IR), then commands and their
responses, on :class:`~mailoauth.mail.stream.MailStream` and the sans-I/O
:mod:`mailoauth.protocols.imap`.

Reading follows the parser's :class:`~mailoauth.protocols.imap.NeedData`: a line with
``readline``, a literal (a message body) with ``readexactly`` in pieces of
:data:`READ_CHUNK`, so no Python loop ever walks a message's bytes.

STARTTLS is refused when not offered (the token would go in clear text), the server's
capabilities are asked again after TLS (what came in clear text is forgotten), and a
reply that arrives together with the STARTTLS answer, before the handshake, ends the
connection (it would pass for protected data). The token is hidden from the transcript
before anything is sent; the AUTHENTICATE line keeps only its verb and mechanism, and
the SASL continuation lines are redacted whole.
"""

from __future__ import annotations

import ssl
from contextlib import suppress
from typing import Final

from mailoauth.errors import ConfigError, MailConnectionError, MailError, RemoteProtocolError
from mailoauth.mail.connect import tls_context
from mailoauth.mail.mechanism import choose_client
from mailoauth.mail.stream import MailStream, open_stream
from mailoauth.mail.transcript import Transcript
from mailoauth.models import IncomingSettings
from mailoauth.protocols.imap import (
    CANCEL,
    Arg,
    Capability,
    Command,
    CommandWriter,
    Continuation,
    NeedData,
    Response,
    ResponseParser,
    Status,
    Tagged,
    sasl_response,
)
from mailoauth.providers import Security, Transport
from mailoauth.sasl import decode
from mailoauth.secret import Secret

__all__ = ["READ_CHUNK", "ImapSession", "open_session", "temporary"]

READ_CHUNK: Final = 1024 * 1024
"""A literal is read in pieces of this size, so the timeout bounds each piece rather
than a whole 25 MB message on a slow link."""

_MAX_ROUNDS: Final = 4  # the token mechanisms need at most one challenge
_TEMPORARY: Final = frozenset({"UNAVAILABLE", "SERVERBUG", "INUSE", "LIMIT"})  # RFC 5530


def temporary(reply: Tagged) -> bool:
    """Whether a NO says "try again later" (RFC 5530 codes)."""
    return reply.code is not None and reply.code.name in _TEMPORARY


class ImapSession:
    """One IMAP connection: commands out, responses in, CAPABILITY kept up to date.

    ``ignored`` names capabilities treated as absent, so tests can run the fallbacks
    (no MOVE, no UIDPLUS) against a server that has them."""

    ignored: frozenset[str] = frozenset()

    def __init__(self, stream: MailStream) -> None:
        self.stream = stream
        self.parser = ResponseParser()
        self.writer = CommandWriter()
        self.capabilities: frozenset[str] = frozenset()
        self.closing = False  # a BYE is expected (greeting, LOGOUT)
        self._in_literal = False  # inside a literal being read in chunks

    @property
    def where(self) -> str:
        return self.stream.where

    def has(self, name: str) -> bool:
        return name in self.capabilities and name not in self.ignored

    def learn(self, names: frozenset[str] | tuple[str, ...]) -> None:
        self.capabilities = frozenset(name.upper() for name in names)
        self.writer.literal_plus = self.has("LITERAL+")
        self.writer.literal_minus = self.has("LITERAL-")

    def unexpected(self, what: str) -> RemoteProtocolError:
        return RemoteProtocolError(
            f"{self.where} sent {what}; it does not follow RFC 9051, so the connection was "
            "given up: report it to the server's operator"
        )

    async def receive(self) -> Response:
        """The next complete response; a literal is read with readexactly, not by line."""
        while True:
            try:
                event = self.parser.next_event()
            except RemoteProtocolError as exc:
                raise RemoteProtocolError(f"{self.where}: {exc}") from None
            if isinstance(event, NeedData):
                if event.literal:
                    size = min(event.literal, READ_CHUNK)
                    # The transcript shows a literal's head (its first chunk, cut short
                    # there), not every MiB of a large message.
                    first = not self._in_literal
                    self._in_literal = event.literal > size
                    self.parser.feed(await self.stream.readexactly(size, record=first))
                else:
                    self.parser.feed(await self.stream.readline())
                continue
            if isinstance(event, Capability):
                self.learn(event.names)
            elif (
                isinstance(event, Status | Tagged)
                and event.code
                and event.code.name == "CAPABILITY"
            ):
                self.learn(event.code.words())
            if isinstance(event, Status) and event.status == "BYE" and not self.closing:
                raise MailConnectionError(
                    f"{self.where} closed the connection ('* BYE {event.text[:200]}'); retry later",
                    host=self.stream.host,
                    port=self.stream.port,
                )
            return event

    async def run(self, command: Command) -> tuple[Tagged, list[Response]]:
        """Send ``command``; return its completion and the untagged responses before it."""
        await self.stream.write(command.parts[0])
        pending = list(command.parts[1:])
        untagged: list[Response] = []
        while True:
            response = await self.receive()
            if isinstance(response, Tagged):
                if response.tag != command.tag:
                    raise self.unexpected(f"a reply to {response.tag} instead of {command.tag}")
                return response, untagged
            if isinstance(response, Continuation):
                if not pending:
                    raise self.unexpected("a '+' continuation that no command asked for")
                await self.stream.write(pending.pop(0))
                continue
            untagged.append(response)

    async def simple(self, verb: str, *args: Arg) -> Tagged:
        return (await self.run(self.writer.command(verb, *args)))[0]

    async def logout(self) -> None:
        self.closing = True
        self.stream.timeout = min(self.stream.timeout, 5)
        with suppress(MailError, RemoteProtocolError):
            await self.simple("LOGOUT")


# -- connecting and logging in -----------------------------------------------------------


async def _greet(session: ImapSession) -> None:
    session.closing = True
    greeting = await session.receive()
    session.closing = False
    host, port = session.stream.host, session.stream.port
    if isinstance(greeting, Status) and greeting.status == "OK":
        return
    if isinstance(greeting, Status) and greeting.status == "PREAUTH":
        raise MailConnectionError(
            f"{session.where} greeted with PREAUTH (the connection is logged in by other "
            "means), so it cannot log in as the mailbox's user with a token; check "
            "incoming.host and incoming.port",
            host=host,
            port=port,
            permanent=True,
        )
    if isinstance(greeting, Status) and greeting.status == "BYE":
        raise MailConnectionError(
            f"{session.where} refused the connection ('* BYE {greeting.text[:200]}'); "
            "retry later, and ask the server's operator if it persists",
            host=host,
            port=port,
        )
    raise RemoteProtocolError(
        f"{session.where} did not greet like an IMAP server; check incoming.port and "
        "incoming.security (ssl: 993, starttls: 143)"
    )


async def _starttls(session: ImapSession, context: ssl.SSLContext) -> None:
    host, port = session.stream.host, session.stream.port
    if not session.capabilities:
        await session.simple("CAPABILITY")
    if "STARTTLS" not in session.capabilities:
        raise MailConnectionError(
            f"{session.where} does not offer STARTTLS, so the token would go in clear text; "
            "use incoming.security = 'ssl' with port 993, or the server's STARTTLS port (143)",
            host=host,
            port=port,
            tls=True,
        )
    reply = await session.simple("STARTTLS")
    if not reply.ok:
        raise MailConnectionError(
            f"{session.where} refused STARTTLS ('{reply.describe()}'); use incoming.security "
            "= 'ssl' with port 993",
            host=host,
            port=port,
            tls=True,
        )
    if not session.parser.idle:  # bytes sent before the handshake would pass as protected
        raise session.unexpected("data after its STARTTLS reply, before TLS began")
    await session.stream.start_tls(context)
    session.learn(frozenset())  # RFC 9051 §6.2.1: forget what was said in clear text
    await session.simple("CAPABILITY")


async def _authenticate(
    session: ImapSession, user: str, token: Secret, mechanism: str, transcript: Transcript
) -> None:
    """AUTHENTICATE (RFC 9051 §6.2.2), driving the SASL client as ``smtp._authenticate``
    does; a refusal raises SaslError, ``temporary`` for ``NO [UNAVAILABLE]``."""
    offered = [name[5:] for name in session.capabilities if name.startswith("AUTH=")]
    client = choose_client(
        offered, mechanism, user, token, session.stream.host, session.stream.port
    )
    initial = session.has("SASL-IR") and client.supports_initial_response
    command = session.writer.authenticate(client.mechanism, client.start() if initial else None)
    await session.stream.write(command.parts[0])
    rounds = 0
    while not isinstance(reply := await session.receive(), Tagged):
        if not isinstance(reply, Continuation):
            continue
        rounds += 1
        if rounds > _MAX_ROUNDS:  # a server that keeps challenging: cancel
            await session.stream.write(CANCEL)
            continue
        try:
            challenge = decode(reply.text)
        except RemoteProtocolError:
            if initial or rounds > 1:
                raise
            challenge = b""  # a text prompt ("+ Ready") where SASL expects an empty one
        step = client.receive(challenge)
        with transcript.authenticating():
            await session.stream.write(sasl_response(step.data))
    if reply.tag != command.tag:
        raise session.unexpected(f"a reply to {reply.tag} instead of {command.tag}")
    if not reply.ok:  # raises SaslError
        client.finish(False, reply.describe(), temporary=temporary(reply))
    client.finish(True, reply.describe())
    if reply.code is None or reply.code.name != "CAPABILITY":
        await session.simple("CAPABILITY")  # they may differ once logged in


async def open_session(
    settings: IncomingSettings,
    user: str,
    token: Secret,
    *,
    mechanism: str,
    ca_file: str | None,
    timeout: float,
    transcript: Transcript,
) -> ImapSession:
    """Connect and log in; the caller closes ``session.stream`` (LOGOUT first, ideally)."""
    if settings.transport is not Transport.IMAP or not settings.host or not settings.port:
        raise ConfigError(
            "incoming.transport", "is not imap with a host", "set transport = 'imap' and host"
        )
    transcript.hide(token)
    context = tls_context(ca_file)
    stream = await open_stream(
        settings.host,
        settings.port,
        settings.security,
        context,
        timeout=timeout,
        transcript=transcript,
    )
    session = ImapSession(stream)
    try:
        await _greet(session)
        if settings.security is Security.STARTTLS:
            await _starttls(session, context)
        elif not session.capabilities:
            await session.simple("CAPABILITY")
        await _authenticate(session, user, token, mechanism, transcript)
    except BaseException:
        await stream.close()
        raise
    return session
