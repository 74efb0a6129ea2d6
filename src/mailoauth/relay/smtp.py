"""The SMTP relay listener: password-only applications submit mail locally, mailoauth
sends it upstream with OAuth2 — stored in the durable outbound queue first (QUEUE mode)
or relayed live, transaction by transaction (PASSTHROUGH mode), as each relay user's
``mode`` says (docs/relay.md, "Modes").

Built on aiosmtpd (RFC 5321 server; AUTH per RFC 4954, SIZE per RFC 1870). The hooks —
login, sender policy, the modes — are :class:`~.smtp_handler.RelayHandler`'s. This module
binds the listener and adds to aiosmtpd's protocol what hooks cannot do: count
connections, and hand a passthrough login's connection over to :mod:`.passthrough` right
after its ``235`` (aiosmtpd's per-command and per-line work would otherwise cost more
than relaying the command: a mail transaction on the hand-over path costs the relay a
few small writes).

* TLS (``MAILOAUTH_RELAY_TLS_CERT``, :mod:`.tls`): STARTTLS offered (RFC 3207), or TLS from
  the first byte (implicit, RFC 8314). AUTH in the clear is allowed on a loopback listener
  only; elsewhere it is answered ``538 5.7.11 Encryption required`` (RFC 4954 section 6)
  until STARTTLS. Without a certificate ``config.parse_relay`` allows loopback only.
* The advertised ``SIZE`` is enforced by aiosmtpd (``552`` at MAIL and during DATA) in
  queue mode, by :mod:`.dotdata` in passthrough mode (and the upstream's own in addition).
* Sockets have ``TCP_NODELAY`` (asyncio sets it on every TCP transport).
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket
from typing import Final

from aiosmtpd.smtp import SMTP

from mailoauth.config import RelayTls
from mailoauth.errors import ConfigError
from mailoauth.oauth.tokens import TokenService
from mailoauth.relay.counters import RelayCounters
from mailoauth.relay.limits import FailureLimiter
from mailoauth.relay.logins import TTL as LOGIN_TTL
from mailoauth.relay.logins import Logins
from mailoauth.relay.passthrough import DATA_TIMEOUT, Passthrough
from mailoauth.relay.pool import SessionPool
from mailoauth.relay.smtp_handler import DEFAULT_SIZE_LIMIT, Login, RelayHandler, logged_in
from mailoauth.relay.smtp_queue import Nudge
from mailoauth.relay.smtp_upstream import Upstream, Upstreams
from mailoauth.relay.tls import server_context
from mailoauth.store import Store
from mailoauth.validate import is_loopback_host

__all__ = ["DEFAULT_SIZE_LIMIT", "RelayHandler", "SmtpRelay"]

log = logging.getLogger("mailoauth.relay")

_PROTOCOL: Final = "smtp"
#: ``<local@domain>`` in its everyday shape (RFC 5321 section 4.1.2: a dot-atom local part,
#: a domain name): what nearly every MAIL and RCPT carries
_ATEXT: Final = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_PATH: Final = re.compile(
    rf"\s*<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>(.*)", re.DOTALL
)


class _RelaySMTP(SMTP):
    """aiosmtpd's SMTP protocol, one per connection, plus the three things its hooks
    cannot do (see the module docstring). Subclassing is aiosmtpd's documented way to
    change a command (``smtp_<VERB>``)."""

    def __init__(self, handler: RelayHandler, **options: object) -> None:
        super().__init__(handler, **options)  # type: ignore[arg-type]
        self.relay = handler
        self._counted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        previous = self.session
        super().connection_made(transport)
        if not self._counted:
            self._counted = True
            self.relay.counters.opened(_PROTOCOL)
        elif previous is not None and previous is not self.session:
            self.relay.release(previous)  # STARTTLS: a new session, no login (RFC 3207)

    def connection_lost(self, error: Exception | None) -> None:
        session = self.session
        super().connection_lost(error)
        if session is not None:
            self.relay.release(session)
        if self._counted:
            self._counted = False
            self.relay.counters.closed(_PROTOCOL)

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's path parser, with a shortcut for the everyday shape of an address:
        the email package's RFC 5322 parser it uses costs ~0.3 ms per MAIL or RCPT, more
        than relaying the command. The result is the same; anything else goes the long
        way (quoted local parts, address literals, source routes, errors)."""
        match = _PLAIN_PATH.fullmatch(arg)
        if match is not None:
            return match[1], match[2]
        return super()._getaddr(arg)

    async def smtp_AUTH(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's method name
        await super().smtp_AUTH(arg)
        login = logged_in(self.session)
        if login is not None and login.passthrough is not None and self.transport is not None:
            self._hand_over(login.passthrough, login)

    def _hand_over(self, passthrough: Passthrough, login: Login) -> None:
        """Give the logged-in connection to the passthrough machinery: the transport, the
        bytes the client sent after AUTH, the policy. Setting ``transport`` to None ends
        aiosmtpd's command loop after this command (its loop condition), and aiosmtpd's
        ``connection_lost`` will not be called: the link calls :meth:`_handed_over_closed`."""
        transport = self.transport
        assert isinstance(transport, asyncio.Transport)
        buffer = self._reader._buffer  # type: ignore[attr-defined]  # a pipelined command
        leftover = bytes(buffer)
        buffer.clear()
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        session, original = self.session, self._original_transport
        size = f"250-SIZE {self.data_size_limit}\r\n" if self.data_size_limit else ""
        ehlo = f"250-{self.hostname}\r\n{size}250-8BITMIME\r\n250 HELP\r\n".encode()
        helo = f"250 {self.hostname}\r\n".encode()
        self.transport = None

        def closed() -> None:
            if original is not None:
                original.close()  # under STARTTLS's TLS layer
            if session is not None:
                self.relay.release(session)
            self._handed_over_closed()

        passthrough.start(transport, leftover, self.relay.policy(login, ehlo, helo), closed)

    def _handed_over_closed(self) -> None:
        if self._counted:
            self._counted = False
            self.relay.counters.closed(_PROTOCOL)


class SmtpRelay:
    """The listener: ``await start()`` binds ``host:port`` on the running loop,
    ``await stop()`` closes it (connections in progress are dropped: nothing they sent
    was acknowledged, so nothing is lost) and the idle upstream sessions.

    ``tls``: serve STARTTLS or implicit TLS with that certificate (loaded, and checked, by
    ``start``). ``loopback``: whether the listener counts as loopback, i.e. may take AUTH
    in the clear; None (the default) derives it from ``host``. Passing False on 127.0.0.1
    lets a test see the policy of a network-facing listener.

    ``tokens`` (with ``ca_file`` for the upstream's TLS) makes passthrough logins
    possible; ``counters`` are the process's shared relay counters (``/metrics``);
    ``upstream_timeout`` bounds each upstream step (connect, TLS, login, a command),
    ``data_timeout`` the upstream's answer to the end of a message;
    ``pool_size`` / ``pool_idle``: idle upstream sessions kept per mailbox, and for how
    long (:mod:`.pool`); ``login_cache``: seconds a successful login is kept
    (:mod:`.logins`)."""

    def __init__(
        self,
        store: Store,
        host: str,
        port: int,
        *,
        nudge: Nudge | None = None,
        limiter: FailureLimiter | None = None,
        size_limit: int = DEFAULT_SIZE_LIMIT,
        tls: RelayTls | None = None,
        loopback: bool | None = None,
        counters: RelayCounters | None = None,
        tokens: TokenService | None = None,
        ca_file: str | None = None,
        upstream_timeout: float = 30.0,
        data_timeout: float = DATA_TIMEOUT,
        pool_size: int = 16,
        pool_idle: float = 30.0,
        login_cache: float = LOGIN_TTL,
    ) -> None:
        self.host, self.port = host, port
        self.tls = tls
        self.loopback = is_loopback_host(host) if loopback is None else loopback
        self.upstreams = None
        if tokens is not None:
            pool: SessionPool[Upstream] = SessionPool(max_idle=pool_size, idle_timeout=pool_idle)
            self.upstreams = Upstreams(
                store, tokens, ca_file=ca_file, timeout=upstream_timeout, pool=pool
            )
        self.handler = RelayHandler(
            store,
            limiter or FailureLimiter(),
            nudge,
            counters=counters,
            upstreams=self.upstreams,
            size_limit=size_limit,
            data_timeout=data_timeout,
            logins=Logins(store, ttl=login_cache),
        )
        self._size_limit = size_limit
        self._server: asyncio.Server | None = None

    @property
    def counters(self) -> RelayCounters:
        return self.handler.counters

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        hostname = socket.gethostname()
        context = None if self.tls is None else server_context(self.tls)
        implicit = self.tls is not None and self.tls.implicit
        starttls = None if implicit else context
        # Implicit TLS: aiosmtpd cannot tell, but every byte is encrypted. Otherwise AUTH
        # only after STARTTLS, unless on loopback (config.parse_relay allows no other
        # listener without TLS; one made directly here would refuse every AUTH with 538).
        require_tls = not implicit and not self.loopback

        def protocol() -> SMTP:
            return _RelaySMTP(
                self.handler,
                data_size_limit=self._size_limit,
                hostname=hostname,
                ident="mailoauth relay",
                tls_context=starttls,
                auth_require_tls=require_tls,
                loop=loop,
            )

        try:
            self._server = await loop.create_server(
                protocol,
                self.host,
                self.port,
                ssl=context if implicit else None,
                backlog=socket.SOMAXCONN,  # a burst of connects waits, is not dropped
            )
        except OSError as exc:
            raise ConfigError(
                "MAILOAUTH_RELAY_SMTP",
                f"cannot listen on {self.host}:{self.port} ({exc.strerror or exc})",
                "free that port, or set MAILOAUTH_RELAY_SMTP to another HOST:PORT (or off)",
            ) from exc
        log.info(
            "relay: SMTP listening on %s:%d (queue or passthrough per relay user, %s)",
            self.host,
            self.port,
            "no TLS" if self.tls is None else self.tls.mode,
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self.handler.wait()
        if self.upstreams is not None:
            await self.upstreams.close()
        log.info("relay: SMTP stopped")
