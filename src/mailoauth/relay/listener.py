"""What the IMAP and POP3 relay listeners share: the socket, the conversation before
login (driven by a sans-I/O machine of :mod:`mailoauth.protocols`), the local login
check, the upstream login, and the splice that follows.

One task per connection. Before login the client has ``preauth_timeout`` seconds in all
(idle, or trickling a line or a literal that never ends) before it is told goodbye and
closed, so thousands of idle connections cost only their memory and a stuck one ends by
itself; every read is a bounded chunk fed to the machine, which enforces the line,
literal and bad-command limits (:mod:`mailoauth.protocols.preauth`).

The local login (:func:`~mailoauth.relay.users.authenticate`, in a worker thread: the
store is synchronous) shares the per-address :class:`~.limits.FailureLimiter` with the
SMTP relay; a locked-out address is refused before any password is checked. Then the
mailbox logs in upstream (:mod:`.upstream`), and its failure is the client's login
failure, with the reason. After that the bytes are spliced (:mod:`.splice`).

STARTTLS / STLS (when the relay has a certificate and is not implicit TLS): bytes the
client sent after the command and before the handshake are refused (the MailStream
rule, CVE-2011-0411's class), and the machine forgets nothing but is told TLS started.
Off loopback (``loopback=False``), a password is taken only over TLS.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from contextlib import suppress
from typing import ClassVar, Final, Generic, Protocol, TypeVar

from mailoauth.config import RelayTls
from mailoauth.errors import ConfigError, MailoauthError
from mailoauth.oauth.tokens import TokenService
from mailoauth.protocols.preauth import Action, Login, NeedData, Send, StartTls
from mailoauth.relay.counters import RelayCounters
from mailoauth.relay.limits import FailureLimiter
from mailoauth.relay.splice import side_of, splice
from mailoauth.relay.tls import server_context
from mailoauth.relay.upstream import Upstream, UpstreamFailure, open_upstream
from mailoauth.relay.users import RelayProtocol, authenticate
from mailoauth.store import RelayUser, Store
from mailoauth.validate import is_loopback_host

__all__ = ["PreAuthMachine", "RelayListener"]

log = logging.getLogger("mailoauth.relay")

_READ: Final = 64 * 1024
_BACKLOG: Final = 1024  # simultaneous connects wait in the kernel, not refused


class PreAuthMachine(Protocol):
    """What :class:`~mailoauth.protocols.imap_server.ImapPreAuth` and
    :class:`~mailoauth.protocols.pop3_server.Pop3PreAuth` both offer."""

    @property
    def buffered(self) -> int: ...
    def greeting(self) -> bytes: ...
    def timed_out(self) -> bytes: ...
    def receive_data(self, data: bytes) -> None: ...
    def next_action(self) -> Action: ...
    def tls_started(self) -> None: ...
    def refused(self, code: str, text: str) -> bytes: ...
    def leftover(self) -> bytes: ...


M = TypeVar("M", bound=PreAuthMachine)


class _Client:
    """The client's connection before login; reads and writes within the deadline."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, deadline: float
    ) -> None:
        self.reader, self.writer, self.deadline = reader, writer, deadline
        peer = writer.get_extra_info("peername")
        self.address = str(peer[0]) if isinstance(peer, tuple) else str(peer)

    async def read(self) -> bytes:
        async with asyncio.timeout_at(self.deadline):
            return await self.reader.read(_READ)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        async with asyncio.timeout_at(self.deadline):
            await self.writer.drain()

    async def start_tls(self, context: ssl.SSLContext) -> None:
        async with asyncio.timeout_at(self.deadline):
            await self.writer.start_tls(context)

    async def close(self) -> None:
        self.writer.close()
        try:
            async with asyncio.timeout(1):
                await self.writer.wait_closed()
        except (TimeoutError, OSError, ssl.SSLError):
            self.writer.transport.abort()


class RelayListener(Generic[M]):
    """A listener: ``await start()`` binds ``host:port``, ``await stop()`` closes it and
    every connection. ``tls``: STARTTLS (or implicit TLS) with that certificate;
    ``loopback``: whether a password may come in clear text (default: from ``host``)."""

    protocol: ClassVar[RelayProtocol]
    variable: ClassVar[str]  # the environment variable that configures it
    failed_code: ClassVar[str]  # the response code of a refused login
    busy_code: ClassVar[str]  # ... of "try again later"

    def __init__(
        self,
        store: Store,
        tokens: TokenService,
        host: str,
        port: int,
        *,
        tls: RelayTls | None = None,
        limiter: FailureLimiter | None = None,
        counters: RelayCounters | None = None,
        loopback: bool | None = None,
        ca_file: str | None = None,
        preauth_timeout: float = 60.0,
        upstream_timeout: float = 30.0,
    ) -> None:
        self.store, self.tokens = store, tokens
        self.host, self.port = host, port
        self.tls = tls
        self.limiter = limiter or FailureLimiter()
        self.counters = counters or RelayCounters()
        self.loopback = is_loopback_host(host) if loopback is None else loopback
        self.ca_file = ca_file
        self.preauth_timeout = preauth_timeout
        self.upstream_timeout = upstream_timeout
        self._context: ssl.SSLContext | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return self.protocol.value.upper()

    # -- what a protocol supplies ---------------------------------------------------------

    def machine(self, *, starttls: bool, secure: bool) -> M:
        raise NotImplementedError

    def accepted(self, machine: M, upstream: Upstream) -> bytes:
        raise NotImplementedError

    # -- the socket -------------------------------------------------------------------------

    async def start(self) -> None:
        self._context = None if self.tls is None else server_context(self.tls)
        implicit = self.tls is not None and self.tls.implicit
        try:
            self._server = await asyncio.start_server(
                self._serve,
                self.host,
                self.port,
                ssl=self._context if implicit else None,
                ssl_handshake_timeout=self.preauth_timeout if implicit else None,
                limit=_READ,
                backlog=_BACKLOG,
            )
        except OSError as exc:
            raise ConfigError(
                self.variable,
                f"cannot listen on {self.host}:{self.port} ({exc.strerror or exc})",
                f"free that port, or set {self.variable} to another HOST:PORT (or off)",
            ) from exc
        mode = "no TLS" if self.tls is None else self.tls.mode
        log.info("relay: %s listening on %s:%d (%s)", self.name, self.host, self.port, mode)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.sleep(0)  # aborted transports close on the next turn
        log.info("relay: %s stopped", self.name)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.counters.opened(self.protocol.value)
        loop = asyncio.get_running_loop()
        client = _Client(reader, writer, loop.time() + self.preauth_timeout)
        try:
            await self._session(client)
        except asyncio.CancelledError:
            # Only stop() cancels this task; ending it cancelled would make asyncio (3.11)
            # log its done-callback's CancelledError as an error.
            writer.transport.abort()
        except Exception:
            log.exception("relay: %s connection from %s failed", self.name, client.address)
            writer.transport.abort()
        finally:
            self.counters.closed(self.protocol.value)
            self._tasks.discard(task)

    # -- one connection -------------------------------------------------------------------------

    async def _session(self, client: _Client) -> None:
        implicit = self.tls is not None and self.tls.implicit
        machine = self.machine(starttls=self._context is not None and not implicit, secure=implicit)
        try:
            upstream = await self._preauth(client, machine)
        except OSError as exc:  # TimeoutError, a reset, a failed TLS handshake
            if isinstance(exc, TimeoutError):
                with suppress(OSError, TimeoutError):
                    client.writer.write(machine.timed_out())
            upstream = None
        except asyncio.CancelledError:
            client.writer.transport.abort()
            raise
        if upstream is None:
            await client.close()
            return
        counts = await splice(
            side_of(client.reader, client.writer, machine.leftover()),
            side_of(upstream.stream.reader, upstream.stream.writer),
        )
        log.info(
            "relay: %s session of mailbox %s from %s ended (%d bytes up, %d down)",
            self.name,
            upstream.mailbox,
            client.address,
            counts.up,
            counts.down,
        )

    async def _preauth(self, client: _Client, machine: M) -> Upstream | None:
        """The conversation until a login succeeds (the upstream) or the client leaves."""
        await client.write(machine.greeting())
        while True:
            action = machine.next_action()
            if isinstance(action, NeedData):
                data = await client.read()
                if not data:
                    return None
                machine.receive_data(data)
            elif isinstance(action, Send):
                await client.write(action.data)
                if action.close:
                    return None
            elif isinstance(action, StartTls):
                await client.write(action.reply)
                if machine.buffered or len(getattr(client.reader, "_buffer", b"")):
                    log.warning(
                        "relay: %s client %s sent data before TLS", self.name, client.address
                    )
                    return None
                assert self._context is not None
                await client.start_tls(self._context)
                machine.tls_started()
            else:
                upstream = await self._login(client, machine, action)
                if upstream is not None:
                    return upstream

    async def _login(self, client: _Client, machine: M, login: Login) -> Upstream | None:
        protocol, address = self.protocol.value, client.address
        wait = self.limiter.retry_after(address)
        if wait:
            self.counters.login(protocol, "locked")
            await client.write(machine.refused(self.busy_code, _locked(wait)))
            return None
        user: RelayUser | None = None
        if login.authzid in ("", login.user):
            try:
                user = await asyncio.to_thread(
                    authenticate, self.store, login.user, login.password, self.protocol
                )
            except MailoauthError as exc:
                log.error("relay: cannot check the login of %s: %s", login.user, exc)
                text = "Cannot check the login now; try again later"
                await client.write(machine.refused(self.busy_code, text))
                return None
        if user is None:
            wait = self.limiter.failure(address)
            self.counters.login(protocol, "locked" if wait else "refused")
            log.warning("relay: failed %s login as %r from %s", self.name, login.user, address)
            text = _locked(wait) if wait else "Authentication failed"
            await client.write(machine.refused(self.busy_code if wait else self.failed_code, text))
            return None
        self.limiter.success(address)
        try:
            upstream = await open_upstream(
                self.store,
                self.tokens,
                user,
                self.protocol,
                ca_file=self.ca_file,
                timeout=self.upstream_timeout,
            )
        except UpstreamFailure as exc:
            self.counters.login(protocol, "upstream")
            log.warning("relay: %s login of %s from %s: %s", self.name, user.name, address, exc)
            code = self.busy_code if exc.temporary else self.failed_code
            await client.write(machine.refused(code, str(exc)))
            return None
        try:
            await client.write(self.accepted(machine, upstream))
        except BaseException:
            await upstream.stream.close()
            raise
        self.counters.login(protocol, "ok")
        log.info(
            "relay: %s logged in over %s from %s (mailbox %s)",
            user.name,
            self.name,
            address,
            user.mailbox,
        )
        return upstream


def _locked(wait: int) -> str:
    return f"Too many failed logins from your address; try again in {wait} s"
