"""The SMTP passthrough relay's upstream side: logged-in SMTP sessions of a mailbox, and the
SMTP replies the relay gives its client for what happened upstream.

:class:`Upstreams` hands out an :class:`Upstream` — a connection opened, TLS'd, EHLO'd
and logged in by :func:`mailoauth.mail.smtp.session` with the mailbox's access token,
through :func:`~mailoauth.mail.auth.with_token` (a refused token is refreshed once) —
from its :class:`~.pool.SessionPool` when one is idle, else by a new login; and takes
sessions back when their client is done (RFC 5321 section 3.3: one session, many mail
transactions). Sockets have ``TCP_NODELAY`` (asyncio sets it; :func:`nodelay` checks it),
so small commands are never held back by Nagle's algorithm.

Reply texts (:func:`upstream_reply`, :func:`unavailable`, :func:`token_refused`) never
hold a token: the upstream's own replies carry none, and mailoauth's errors are written
without secrets. The upstream's replies are passed on with their code and text,
enhanced status code included (RFC 3463), made printable ASCII.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Awaitable, Callable, Hashable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Final

import aiosmtplib
from aiosmtplib.response import SMTPResponse

from mailoauth.errors import (
    AuthorizationNeeded,
    MailoauthError,
    ProviderUnavailable,
    TokenRefused,
)
from mailoauth.mail.auth import with_token
from mailoauth.mail.smtp import Session, session
from mailoauth.models import Mailbox
from mailoauth.oauth.tokens import AccessToken, TokenService
from mailoauth.relay.pool import SessionPool
from mailoauth.store import Store

__all__ = [
    "Upstream",
    "Upstreams",
    "nodelay",
    "token_refused",
    "unavailable",
    "upstream_reply",
]

log = logging.getLogger("mailoauth.relay")

#: What breaks an upstream session (the session is then of no further use): the
#: connection lost, no answer in time, an answer that is not SMTP.
BROKEN: Final = (aiosmtplib.SMTPException, OSError)
_MAX_LINE: Final = 400


def _printable(text: str) -> str:
    if not (text.isascii() and text.isprintable()):  # C-speed check of the usual case
        text = "".join(c if " " <= c <= "~" else "?" for c in text)
    return text[:_MAX_LINE]


def upstream_reply(reply: SMTPResponse) -> str:
    """The upstream's reply as the relay's own: same code, same text (each line of a
    multi-line reply, RFC 5321 section 4.2.1), ready for aiosmtpd's ``push``."""
    code = reply.code if 200 <= reply.code <= 599 else 451
    lines = [_printable(line) for line in reply.message.split("\n")] or [""]
    head = "".join(f"{code}-{line}\r\n" for line in lines[:-1])
    return f"{head}{code} {lines[-1]}".rstrip()


def unavailable(mailbox: str, reason: str) -> str:
    """``451 4.4.1``: the upstream cannot be reached or dropped the connection."""
    return f"451 4.4.1 Upstream for {mailbox} unavailable ({_printable(reason)}); try again later"


def token_refused(mailbox: str, error: MailoauthError) -> str:
    """``454 4.7.0``: mailoauth has no token for the mailbox that the upstream takes."""
    if isinstance(error, ProviderUnavailable):
        return (
            f"454 4.7.0 Cannot get a token for mailbox {mailbox} right now "
            "(the provider is unavailable); try again later"
        )
    return (
        f"454 4.7.0 The upstream refused mailbox {mailbox}'s login; an administrator must "
        f"re-authorize it (mailoauth authorize {mailbox})"
    )


def is_token_problem(error: BaseException) -> bool:
    """A token problem (454), not an unreachable upstream (451). A login the server
    refused "for now" (a 4xx, e.g. too many connections) is the latter."""
    if isinstance(error, TokenRefused):
        return not error.temporary
    return isinstance(error, AuthorizationNeeded | ProviderUnavailable)


def nodelay(transport: object) -> bool:
    """Whether the transport's socket has ``TCP_NODELAY`` (True for non-TCP sockets)."""
    get = getattr(transport, "get_extra_info", None)
    sock = get("socket") if get is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return True
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


class Upstream:
    """One logged-in upstream SMTP session. Commands go one at a time; the caller keeps
    track of the mail transaction (``in_transaction``; ``in_data`` from ``DATA`` to the
    reply to the end of the data) so the session is reset or dropped, never reused in the
    middle of one."""

    def __init__(self, opened: Session, stack: AsyncExitStack, key: Hashable) -> None:
        self.smtp = opened.smtp
        self.where = f"{opened.host}:{opened.port}"
        self.timeout = opened.timeout
        self.key = key
        self.reused = False  # taken from the pool: may have been dropped meanwhile
        self.in_transaction = False
        self.in_data = False
        self._stack = stack

    @property
    def alive(self) -> bool:
        return self.smtp.is_connected

    def supports(self, extension: str) -> bool:
        return self.smtp.supports_extension(extension)

    async def command(self, *args: bytes) -> SMTPResponse:
        return await self.smtp.execute_command(*args, timeout=self.timeout)

    def write(self, data: bytes) -> None:
        """Message data, as is (the caller sent ``DATA`` and got ``354``)."""
        protocol = self.smtp.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        protocol.write(data)

    async def reply(self, timeout: float) -> SMTPResponse:
        """The reply to what :meth:`write` sent (the end of the data)."""
        protocol = self.smtp.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        try:
            return await protocol.read_response(timeout=timeout)
        except BaseException:
            self.smtp.close()
            raise

    async def reset(self) -> bool:
        """RSET; False (and the session closed) when that did not work."""
        try:
            reply = await self.command(b"RSET")
        except BROKEN:
            reply = None
        if reply is None or reply.code != 250:
            await self.abort()
            return False
        self.in_transaction = False
        return True

    async def abort(self) -> None:
        """Close without QUIT: in the middle of DATA, a QUIT would be message text."""
        self.smtp.close()
        await self.close()

    async def close(self) -> None:
        try:
            await self._stack.aclose()
        except (MailoauthError, *BROKEN) as exc:
            log.debug("relay: closing the upstream session to %s: %s", self.where, exc)


@dataclass(frozen=True)
class UpstreamStats:
    logins: int  # upstream logins made (new sessions)
    reused: int  # sessions taken from the pool instead
    idle: int  # sessions idle in the pool now


Opener = Callable[[Mailbox], Awaitable[Upstream]]


class Upstreams:
    """Logged-in upstream sessions per mailbox: from the pool, else a new login."""

    def __init__(
        self,
        store: Store,
        tokens: TokenService,
        *,
        ca_file: str | None = None,
        timeout: float = 30.0,
        pool: SessionPool[Upstream] | None = None,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._ca_file = ca_file
        self.timeout = timeout
        self.pool: SessionPool[Upstream] = pool or SessionPool()
        self._logins = 0
        self._reused = 0

    def stats(self) -> UpstreamStats:
        return UpstreamStats(self._logins, self._reused, self.pool.idle())

    @staticmethod
    def key(mailbox: Mailbox) -> Hashable:
        """Sessions are shared by mailboxes with the same name, login and settings: a
        mailbox changed in the store gets new ones."""
        return (mailbox.name, mailbox.login, mailbox.outgoing, mailbox.sasl_mechanism)

    async def get(self, mailbox: Mailbox, *, fresh: bool = False) -> Upstream:
        """An idle session of ``mailbox`` (unless ``fresh``), else a new login. Raises
        what :func:`~mailoauth.mail.smtp.session` and ``with_token`` raise."""
        key = self.key(mailbox)
        if not fresh:
            pooled = self.pool.take(key)
            if pooled is not None:
                self._reused += 1
                pooled.reused = True
                return pooled
        upstream = await self._open(mailbox, key)
        self._logins += 1
        return upstream

    def give_back(self, upstream: Upstream) -> None:
        """Keep a session that is outside a transaction for the next client."""
        if upstream.in_transaction:
            raise ValueError("reset the upstream transaction before giving the session back")
        self.pool.put(upstream.key, upstream)

    async def close(self) -> None:
        await self.pool.close()

    async def _open(self, mailbox: Mailbox, key: Hashable) -> Upstream:
        outgoing = mailbox.outgoing
        assert outgoing is not None  # users.check_mode: passthrough needs SMTP

        async def attempt(access: AccessToken) -> Upstream:
            stack = AsyncExitStack()
            opened = await stack.enter_async_context(
                session(
                    outgoing,
                    access.token,
                    ca_file=self._ca_file,
                    timeout=self.timeout,
                    transcript=None,
                )
            )
            try:
                await opened.login(mailbox.sasl_mechanism.value, access.user, access.token)
            except BaseException as exc:
                # session() turns aiosmtplib's failures into mailoauth's and QUITs
                if not await stack.__aexit__(type(exc), exc, exc.__traceback__):
                    raise
                raise AssertionError("unreachable") from exc  # pragma: no cover
            return Upstream(opened, stack, key)

        return await with_token(self._store, self._tokens, mailbox.name, attempt)
