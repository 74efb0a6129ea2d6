"""The I/O of a passthrough connection after its login: the client's transport, the
upstream session, timers, flow control — around the rules of
:class:`~.passthrough_machine.PassthroughMachine`.

Both transports deliver straight into the machine (asyncio protocols, no task per
command): a client command is answered, or relayed upstream, in the same turn of the
event loop that read it. What the machine asks for is done after every event:

* bytes for either side are written (one write per side and event);
* ``need_upstream``: a task gets a session (:meth:`.Passthrough.connect`, a new login
  when one was lost in this connection);
* ``drop_upstream``: the session is aborted (no QUIT: in DATA it would be message text);
* a reply due from the upstream arms a timer (``Timeouts.reply``, or ``Timeouts.end``
  for the end of the data): none in time counts as the session lost;
* the client's reading stops while the upstream's writing is paused (its buffer above
  asyncio's high-water mark) or the machine holds more than it wants;
* ``closed``: the client's connection is closed; once no upstream reply is due (a
  pipelined ``RSET``), the session goes back to the pool when it is outside a
  transaction, else it is closed.

A client silent for ``Timeouts.idle`` seconds is told ``421`` and disconnected.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from mailoauth.relay.passthrough_machine import PassthroughMachine, Policy
from mailoauth.relay.smtp_upstream import Upstream

if TYPE_CHECKING:
    from mailoauth.relay.passthrough import Passthrough

__all__ = ["Link", "Timeouts"]

log = logging.getLogger("mailoauth.relay")

_MODE = "passthrough"


class Timeouts(NamedTuple):
    reply: float  # an upstream reply to a command
    end: float  # the upstream's reply to the end of the data
    idle: float  # a silent client


class _ClientSide(asyncio.Protocol):
    def __init__(self, link: Link) -> None:
        self._link = link

    def data_received(self, data: bytes) -> None:
        self._link.from_client(data)

    def eof_received(self) -> bool:
        self._link.client_gone()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._link.client_gone()


class Link:
    """One client connection in passthrough mode (see the module docstring)."""

    def __init__(
        self,
        owner: Passthrough,
        policy: Policy,
        client: asyncio.Transport,
        upstream: Upstream | None,
        on_closed: Callable[[], None],
    ) -> None:
        self._owner = owner
        self._client = client
        self._upstream = upstream
        self._on_closed = on_closed
        self._timeouts = owner.timeouts
        self._loop = asyncio.get_running_loop()
        extensions = upstream.extensions if upstream is not None else frozenset()
        self.machine = PassthroughMachine(
            policy, connected=upstream is not None, extensions=extensions
        )
        self._connecting: asyncio.Task[None] | None = None
        self._finishing: asyncio.Task[None] | None = None
        self._lost_one = False  # a session was lost here: the next one is a new login
        self._reply_timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None  # when the reply now due is late
        self._delay = 0.0
        self._timer_at = -1  # machine.replies when the deadline was set
        self._settled = asyncio.Event()
        self._reading = True
        self._upstream_paused = False
        self._last_heard = self._loop.time()
        self._idle_timer: asyncio.TimerHandle | None = None

    def start(self, leftover: bytes) -> None:
        self._client.set_protocol(_ClientSide(self))
        if self._upstream is not None:
            self._upstream.attach(self)
        if not self._client.is_reading():
            self._client.resume_reading()
        self._idle_timer = self._loop.call_later(self._timeouts.idle, self._idle_check)
        if leftover:
            self.from_client(leftover)
        else:
            self._flush()

    # --- events from the client -------------------------------------------------------

    def from_client(self, data: bytes) -> None:
        self._last_heard = self._loop.time()
        self.machine.client_data(data)
        self._flush()

    def client_gone(self) -> None:
        self.machine.client_gone()
        self._flush()

    # --- events from the upstream (the Sink of smtp_upstream.Upstream) -------------------

    def from_upstream(self, data: bytes) -> None:
        self.machine.upstream_data(data)
        self._flush()

    def upstream_lost(self, reason: str) -> None:
        self._upstream = None
        self._lost_one = True
        self.machine.upstream_lost(reason)
        self._flush()

    def upstream_paused(self, paused: bool) -> None:
        self._upstream_paused = paused
        self._flow()

    # --- doing what the machine says ---------------------------------------------------

    def _flush(self) -> None:
        machine = self.machine
        if machine.to_upstream:
            if self._upstream is not None:
                out = machine.to_upstream
                self._upstream.write(out[0] if len(out) == 1 else b"".join(out))
            machine.to_upstream.clear()
        if machine.drop_upstream:
            machine.drop_upstream = False
            self._drop()
        if machine.to_client:
            if not self._client.is_closing():
                out = machine.to_client
                self._client.write(out[0] if len(out) == 1 else b"".join(out))
            machine.to_client.clear()
        if machine.outcomes:
            for outcome in machine.outcomes:
                self._owner.counters.message(_MODE, outcome)
            machine.outcomes.clear()
        if machine.notes:
            for note in machine.notes:
                log.info("relay: %s", note)
            machine.notes.clear()
        if machine.need_upstream and self._connecting is None:
            machine.need_upstream = False
            self._connecting = asyncio.ensure_future(self._connect())
        self._arm_reply_timer()
        if machine.closed and self._finishing is None:
            self._finishing = asyncio.ensure_future(self._finish())
        self._flow()

    def _drop(self) -> None:
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            self._lost_one = True
            upstream.abort()

    def _flow(self) -> None:
        read = self.machine.wants_client_data and not self._upstream_paused
        if read == self._reading or self._client.is_closing():
            return
        self._reading = read
        if read:
            self._client.resume_reading()
        else:
            self._client.pause_reading()

    def _arm_reply_timer(self) -> None:
        """Keep the deadline of the reply now due. The deadline moves with every reply;
        the timer does not: when it fires early it waits for the rest (one timer per
        timeout, not one per command)."""
        machine = self.machine
        waiting = machine.waiting_for
        if waiting is None:
            self._deadline = None
            self._settled.set()
            return
        self._settled.clear()
        if self._deadline is not None and self._timer_at == machine.replies:
            return  # no reply came since the deadline was set
        delay = self._timeouts.end if waiting == "end" else self._timeouts.reply
        self._timer_at = machine.replies
        self._deadline = self._loop.time() + delay
        self._delay = delay
        if self._reply_timer is None:
            self._reply_timer = self._loop.call_at(self._deadline, self._check_deadline)

    def _check_deadline(self) -> None:
        self._reply_timer = None
        if self._deadline is None:
            return
        if self._loop.time() < self._deadline:
            self._reply_timer = self._loop.call_at(self._deadline, self._check_deadline)
            return
        self._deadline = None
        self._drop()
        self.machine.upstream_lost(f"no answer within {self._delay:g} s", replay=False)
        self._flush()

    def _idle_check(self) -> None:
        self._idle_timer = None
        if self.machine.closed:
            return
        silent = self._loop.time() - self._last_heard
        if silent < self._timeouts.idle or self.machine.waiting_for is not None:
            wait = max(self._timeouts.idle - silent, 1.0)
            self._idle_timer = self._loop.call_later(wait, self._idle_check)
            return
        log.info("relay: %s idle for %g s; disconnecting", self._owner.user, silent)
        self.machine.to_client.append(b"421 4.4.2 Idle for too long; closing the connection\r\n")
        self.machine.client_gone()
        self._flush()

    async def _connect(self) -> None:
        try:
            opened = await self._owner.connect(fresh=self._lost_one)
        finally:
            self._connecting = None
        if isinstance(opened, str):
            self.machine.upstream_failed(opened)
        elif self.machine.closed:
            self._owner.upstreams.give_back(opened)
        else:
            self._upstream = opened
            opened.attach(self)
            self.machine.upstream_opened(opened.extensions)
        self._flush()

    async def _finish(self) -> None:
        """The client is gone: close its side; then the upstream session goes back to
        the pool or is closed (see the module docstring)."""
        self._client.close()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        try:
            if self._connecting is not None:
                await asyncio.shield(self._connecting)
            await self._settled.wait()  # bounded by the reply timer
        finally:
            if self._reply_timer is not None:
                self._reply_timer.cancel()
            upstream, self._upstream = self._upstream, None
            if upstream is not None:
                if self.machine.reusable and upstream.alive:
                    self._owner.upstreams.give_back(upstream)
                else:
                    upstream.abort()
            self._on_closed()
