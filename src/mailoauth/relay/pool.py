"""Idle, logged-in upstream sessions kept for the next client: a small pool per key.

The one-connection-per-mail pattern (connect, EHLO, AUTH, one message, QUIT: a scanner,
a PBX) would otherwise pay a TCP connect, a TLS handshake, EHLO and an OAuth2 login at
the upstream for every message. RFC 5321 section 3.3 lets one SMTP session carry any
number of mail transactions, so a session a client is done with is kept here and the
next client of the same mailbox continues it.

Rules, all local to this class and tested on a fake clock:

* at most ``max_idle`` idle sessions per key (a mailbox and the settings it was opened
  with); one more is closed instead of kept;
* an idle session is closed ``idle_timeout`` seconds after it was put back (servers drop
  idle SMTP sessions after a few minutes anyway, and a re-authorized mailbox should not
  keep using its old login for long);
* :meth:`take` hands out the most recently used session first (the least likely to have
  been dropped) and silently closes those that are no longer connected.

The pool neither opens nor resets sessions: the caller opens one when :meth:`take` has
none and puts back only sessions outside a mail transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

__all__ = ["Pooled", "SessionPool"]

log = logging.getLogger("mailoauth.relay")


class Pooled(Protocol):
    """What the pool needs of a session."""

    @property
    def alive(self) -> bool:
        """Still connected, as far as can be told without a round trip."""

    async def close(self) -> None:
        """Say goodbye (QUIT) if possible and close; never raises."""


C = TypeVar("C", bound=Pooled)


@dataclass
class _Idle(Generic[C]):
    session: C
    until: float  # monotonic deadline


class SessionPool(Generic[C]):
    """Idle sessions per key, bounded in number and age (see the module docstring)."""

    def __init__(
        self,
        *,
        max_idle: int = 4,
        idle_timeout: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_idle = max_idle
        self.idle_timeout = idle_timeout
        self._clock = clock
        self._idle: dict[Hashable, list[_Idle[C]]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._reaper: asyncio.TimerHandle | None = None

    def take(self, key: Hashable) -> C | None:
        """An idle, connected session for ``key`` (most recently used first), or None."""
        entries = self._idle.get(key)
        now = self._clock()
        while entries:
            entry = entries.pop()
            if entry.until > now and entry.session.alive:
                if not entries:
                    del self._idle[key]
                return entry.session
            self._close(entry.session)
        self._idle.pop(key, None)
        return None

    def put(self, key: Hashable, session: C) -> None:
        """Keep ``session`` for the next :meth:`take` of ``key``, or close it when it is
        dead or the key already has ``max_idle`` idle sessions."""
        entries = self._idle.setdefault(key, [])
        if not session.alive or len(entries) >= self.max_idle:
            if not entries:
                del self._idle[key]
            self._close(session)
            return
        entries.append(_Idle(session, self._clock() + self.idle_timeout))
        self._schedule()

    def idle(self, key: Hashable | None = None) -> int:
        """How many sessions are idle (for ``key``, or in all)."""
        if key is not None:
            return len(self._idle.get(key, ()))
        return sum(len(entries) for entries in self._idle.values())

    def expire(self) -> int:
        """Close the sessions idle for longer than ``idle_timeout``; returns how many."""
        now = self._clock()
        closed = 0
        for key in list(self._idle):
            keep = []
            for entry in self._idle[key]:
                if entry.until > now and entry.session.alive:
                    keep.append(entry)
                else:
                    self._close(entry.session)
                    closed += 1
            if keep:
                self._idle[key] = keep
            else:
                del self._idle[key]
        return closed

    async def close(self) -> None:
        """Close every idle session and wait for the goodbyes (at shutdown)."""
        if self._reaper is not None:
            self._reaper.cancel()
            self._reaper = None
        for entries in self._idle.values():
            for entry in entries:
                self._close(entry.session)
        self._idle.clear()
        while self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)

    def _close(self, session: C) -> None:
        task = asyncio.ensure_future(session.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _schedule(self) -> None:
        """One timer for the earliest deadline, re-armed while anything is idle."""
        if self._reaper is not None or not self._idle:
            return
        first = min(entry.until for entries in self._idle.values() for entry in entries)
        loop = asyncio.get_running_loop()
        self._reaper = loop.call_later(max(first - self._clock(), 0.0) + 0.05, self._reap)

    def _reap(self) -> None:
        self._reaper = None
        closed = self.expire()
        if closed:
            log.debug("relay: closed %d idle upstream session(s)", closed)
        self._schedule()
