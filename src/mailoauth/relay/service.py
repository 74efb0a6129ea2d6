"""The relay listeners the service runs: started together from
:class:`~mailoauth.config.Settings`, stopped together at shutdown.

A listener that cannot bind (the port is taken, e.g. by a second ``mailoauth serve`` on
the same machine) is logged and left off; the others, the web service and the scheduler
still run. ``mailoauth serve`` (``web/app.py``) and ``mailoauth relay`` (``cli/relay.py``)
both start the relay through :func:`start_relays`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from mailoauth.config import Settings
from mailoauth.errors import ConfigError
from mailoauth.oauth.tokens import TokenService
from mailoauth.relay.counters import RelayCounters
from mailoauth.relay.imap import ImapRelay
from mailoauth.relay.limits import FailureLimiter
from mailoauth.relay.pop3 import Pop3Relay
from mailoauth.relay.smtp import SmtpRelay
from mailoauth.store import Store

__all__ = ["Drain", "Relays", "start_relays"]

log = logging.getLogger("mailoauth.relay")

#: ``drain(mailbox=NAME)``: one delivery run of the outbound queue for one mailbox.
Drain = Callable[..., Awaitable[object]]


class Listener(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...


@dataclass
class Relays:
    """The listeners that started (possibly none), with what they share: the counters
    ``/metrics`` shows and the wrong-password limiter (one budget per source address
    across SMTP, IMAP and POP3)."""

    counters: RelayCounters = field(default_factory=RelayCounters)
    limiter: FailureLimiter = field(default_factory=FailureLimiter)
    smtp: SmtpRelay | None = None
    imap: ImapRelay | None = None
    pop3: Pop3Relay | None = None
    started: list[Listener] = field(default_factory=list)

    async def stop(self) -> None:
        for listener in reversed(self.started):
            await listener.stop()
        self.started.clear()


async def start_relays(
    settings: Settings, store: Store, tokens: TokenService, drain: Drain, *, strict: bool = False
) -> Relays:
    """Start every relay listener ``settings`` turns on. One that cannot bind is logged
    and skipped, or, with ``strict`` (``mailoauth relay``, where the relay is the whole
    point), stops the others and raises its :class:`~mailoauth.errors.ConfigError`.

    ``tokens`` gives the upstream logins their access tokens (IMAP, POP3, passthrough)."""
    relays = Relays()
    if settings.relay_smtp is not None:

        async def nudge(mailbox: str) -> object:  # deliver now, not at the next 15 s tick
            return await drain(mailbox=mailbox)

        smtp = SmtpRelay(
            store,
            *settings.relay_smtp,
            nudge=nudge,
            tls=settings.relay_tls,
            limiter=relays.limiter,
            counters=relays.counters,
            tokens=tokens,  # passthrough logins
            ca_file=settings.ca_file,
            login_cache=settings.relay_login_cache,
        )
        if await _start(relays, smtp, strict):
            relays.smtp = smtp
    for kind, address, tls in (
        (ImapRelay, settings.relay_imap, settings.relay_imap_tls),
        (Pop3Relay, settings.relay_pop3, settings.relay_pop3_tls),
    ):
        if address is None:
            continue
        listener = kind(
            store,
            tokens,
            *address,
            tls=tls,
            limiter=relays.limiter,
            counters=relays.counters,
            ca_file=settings.ca_file,
        )
        if await _start(relays, listener, strict):
            setattr(relays, listener.protocol.value, listener)
    return relays


async def _start(relays: Relays, listener: Listener, strict: bool) -> bool:
    try:
        await listener.start()
    except ConfigError as exc:
        if strict:
            await relays.stop()
            raise
        log.error("relay not started: %s", exc)
        return False
    relays.started.append(listener)
    return True
