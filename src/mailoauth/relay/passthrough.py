"""PASSTHROUGH mode: a login's upstream session, and the hand-over of its connection.

At the local login (:meth:`Passthrough.open`) the relay takes a logged-in upstream session
of the relay user's mailbox (:class:`~.smtp_upstream.Upstreams`: from the pool, or a new
login with the mailbox's token). A token the upstream refuses even after the refresh
fails the login with ``454 4.7.0`` (an administrator must re-authorize the mailbox); an
unreachable upstream is the answer to the first ``MAIL``, which tries again
(``451 4.4.1``).

Right after its ``235``, aiosmtpd hands the client's connection over
(:meth:`Passthrough.start`): from then on :class:`~.passthrough_machine.PassthroughMachine`
decides what is answered and relayed, and :class:`~.passthrough_link.Link` moves the
bytes between the two transports. aiosmtpd keeps everything before the login (greeting,
EHLO, STARTTLS, AUTH, the failure budget), where its per-command work costs nothing
that matters; after the login, a mail transaction costs the relay a few small writes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from mailoauth.errors import MailoauthError
from mailoauth.models import Mailbox
from mailoauth.relay.counters import RelayCounters
from mailoauth.relay.passthrough_link import Link, Timeouts
from mailoauth.relay.passthrough_machine import Policy, unavailable
from mailoauth.relay.smtp_upstream import Upstream, Upstreams, is_token_problem, token_refused

__all__ = ["DATA_TIMEOUT", "Passthrough"]

log = logging.getLogger("mailoauth.relay")

#: How long the upstream may take to answer the end of the data (RFC 5321 section
#: 4.5.3.2.6 allows it 10 minutes; the big providers answer within seconds).
DATA_TIMEOUT: Final = 120.0
#: How long a logged-in client may stay silent (aiosmtpd's default before the login).
IDLE_TIMEOUT: Final = 300.0


class Passthrough:
    """The passthrough side of one login (see the module docstring)."""

    def __init__(
        self,
        upstreams: Upstreams,
        mailbox: Mailbox,
        user: str,
        *,
        counters: RelayCounters,
        data_timeout: float = DATA_TIMEOUT,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.upstreams = upstreams
        self.mailbox = mailbox
        self.user = user
        self.counters = counters
        self.timeouts = Timeouts(upstreams.timeout, data_timeout, idle_timeout)
        self.upstream: Upstream | None = None

    @property
    def name(self) -> str:
        return self.mailbox.name

    async def open(self) -> str | None:
        """At the local login: a session for the mailbox. Returns the reply that refuses
        the login when the upstream refuses the mailbox's token; None otherwise."""
        opened = await self.connect()
        if isinstance(opened, str):
            return opened if opened.startswith("454") else None
        self.upstream = opened
        return None

    async def connect(self, *, fresh: bool = False) -> Upstream | str:
        """A logged-in upstream session (a new login when ``fresh``), or the reply that
        says why there is none (``454``: the token; ``451``: the upstream)."""
        try:
            return await self.upstreams.get(self.mailbox, fresh=fresh)
        except MailoauthError as exc:
            if is_token_problem(exc):
                log.warning("relay: upstream login of mailbox %s refused: %s", self.name, exc)
                return token_refused(self.name, exc)
            log.warning("relay: upstream of mailbox %s unavailable: %s", self.name, exc)
            return unavailable(self.name, str(exc))
        except Exception as exc:
            log.exception("relay: cannot open an upstream session for mailbox %s", self.name)
            return unavailable(self.name, type(exc).__name__)

    def start(
        self,
        client: asyncio.Transport,
        leftover: bytes,
        policy: Policy,
        on_closed: Callable[[], None],
    ) -> Link:
        """Take over the client's connection after its login (see the module docstring)."""
        upstream, self.upstream = self.upstream, None
        link = Link(self, policy, client, upstream, on_closed)
        link.start(leftover)
        return link

    async def close(self) -> None:
        """The connection ended before :meth:`start`: the session goes back to the pool."""
        upstream, self.upstream = self.upstream, None
        if upstream is not None:
            self.upstreams.give_back(upstream)
