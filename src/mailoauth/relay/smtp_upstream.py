"""The SMTP passthrough relay's upstream side: logged-in SMTP sessions of a mailbox.

:class:`Upstreams` hands out an :class:`Upstream` — a connection opened, TLS'd, EHLO'd
and logged in by :func:`mailoauth.mail.smtp.session` with the mailbox's access token,
through :func:`~mailoauth.mail.auth.with_token` (a refused token is refreshed once), then
taken out of aiosmtplib's hands (:meth:`~mailoauth.mail.smtp.Session.detach`) so the
relay speaks SMTP on it itself — from its :class:`~.pool.SessionPool` when one is idle,
else by a new login; and takes sessions back when their client is done (RFC 5321
section 3.3: one session, many mail transactions). Sockets have ``TCP_NODELAY`` (asyncio
sets it; :func:`nodelay` checks it), so small commands are never held back by Nagle's
algorithm.

:func:`token_refused` is the relay's reply when the mailbox has no token the upstream
takes; like every reply the relay makes up, it holds no secret.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Protocol

from mailoauth.errors import (
    AuthorizationNeeded,
    MailoauthError,
    ProviderUnavailable,
    TokenRefused,
)
from mailoauth.mail.auth import with_token
from mailoauth.mail.smtp import Detached, session
from mailoauth.models import Mailbox
from mailoauth.oauth.tokens import AccessToken, TokenService
from mailoauth.relay.pool import SessionPool
from mailoauth.store import Store

__all__ = ["Sink", "Upstream", "Upstreams", "is_token_problem", "nodelay", "token_refused"]

log = logging.getLogger("mailoauth.relay")


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


class Sink(Protocol):
    """Who an upstream session talks to while a client uses it."""

    def from_upstream(self, data: bytes) -> None: ...

    def upstream_lost(self, reason: str) -> None: ...

    def upstream_paused(self, paused: bool) -> None: ...


class _Side(asyncio.Protocol):
    """The asyncio protocol of an upstream connection once aiosmtplib let go of it."""

    def __init__(self, upstream: Upstream) -> None:
        self._upstream = upstream

    def data_received(self, data: bytes) -> None:
        self._upstream._received(data)

    def eof_received(self) -> bool:
        return False  # the server is done: close

    def connection_lost(self, exc: Exception | None) -> None:
        self._upstream._gone(exc)

    def pause_writing(self) -> None:
        self._upstream._pause(True)

    def resume_writing(self) -> None:
        self._upstream._pause(False)


class Upstream:
    """One logged-in upstream SMTP session on a raw transport: the relay writes commands
    and reads replies itself (:mod:`.passthrough_machine`). While idle (in the pool,
    no :attr:`sink`), anything the server says — a ``421`` before it hangs up — ends it."""

    def __init__(self, detached: Detached, key: Hashable) -> None:
        self.transport = detached.transport
        self.extensions = detached.extensions
        self.where = f"{detached.host}:{detached.port}"
        self.key = key
        self.sink: Sink | None = None
        self._early = detached.leftover
        self._gone_reason: str | None = None
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport.set_protocol(_Side(self))

    @property
    def alive(self) -> bool:
        return self._gone_reason is None and not self.transport.is_closing()

    def attach(self, sink: Sink) -> None:
        self.sink = sink
        if self._early:
            early, self._early = self._early, b""
            sink.from_upstream(early)

    def detach(self) -> None:
        self.sink = None

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def abort(self) -> None:
        """Close without QUIT: in the middle of DATA, a QUIT would be message text."""
        self.sink = None
        self.transport.abort()

    async def close(self) -> None:
        """QUIT (when connected) and close; waits briefly for the socket to be freed."""
        self.sink = None
        if self.alive:
            self.transport.write(b"QUIT\r\n")
        self.transport.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._closed), 1.0)

    def _received(self, data: bytes) -> None:
        if self.sink is not None:
            self.sink.from_upstream(data)
            return
        text = data[:80].decode("ascii", "replace").strip()
        log.debug("relay: idle upstream session to %s said %r; closing it", self.where, text)
        self._gone_reason = text or "closed"
        self.transport.close()

    def _gone(self, exc: Exception | None) -> None:
        if self._gone_reason is None:
            self._gone_reason = str(exc) if exc is not None else "connection closed"
        if not self._closed.done():
            self._closed.set_result(None)
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.upstream_lost(f"{self.where}: {self._gone_reason}")

    def _pause(self, paused: bool) -> None:
        if self.sink is not None:
            self.sink.upstream_paused(paused)


@dataclass(frozen=True)
class UpstreamStats:
    logins: int  # upstream logins made (new sessions)
    reused: int  # sessions taken from the pool instead
    idle: int  # sessions idle in the pool now


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
                return pooled
        upstream = await self._open(mailbox, key)
        self._logins += 1
        return upstream

    def give_back(self, upstream: Upstream) -> None:
        """Keep a session that is outside a mail transaction for the next client."""
        upstream.detach()
        self.pool.put(upstream.key, upstream)

    async def close(self) -> None:
        await self.pool.close()

    async def _open(self, mailbox: Mailbox, key: Hashable) -> Upstream:
        outgoing = mailbox.outgoing
        assert outgoing is not None  # users.check_mode: passthrough needs SMTP

        async def attempt(access: AccessToken) -> Upstream:
            async with session(
                outgoing, access.token, ca_file=self._ca_file, timeout=self.timeout, transcript=None
            ) as opened:
                await opened.login(mechanism, access.user, access.token)
                detached = opened.detach()
            return Upstream(detached, key)

        mechanism = mailbox.sasl_mechanism.value
        return await with_token(self._store, self._tokens, mailbox.name, attempt)
