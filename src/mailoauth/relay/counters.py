"""The relay's counters, for ``/metrics``: connections open, logins and messages by outcome.

One :class:`RelayCounters` is shared by every listener of a process
(:func:`~mailoauth.relay.service.start_relays` makes it); the listeners only increment,
``web/metrics.py`` reads a :meth:`~RelayCounters.snapshot`. Plain integers touched from the
event loop's thread only, so no lock.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["LoginOutcome", "MessageOutcome", "RelayCounters", "RelaySnapshot"]

#: ``ok``; ``refused`` (wrong login or password); ``locked`` (too many failures from the
#: source); ``upstream`` (the local login was fine, the upstream refused mailoauth's token).
LoginOutcome = Literal["ok", "refused", "locked", "upstream"]
#: ``queued`` (committed to the queue), ``relayed`` (passthrough, upstream said 250),
#: ``rejected`` (refused by the relay's policy or the upstream), ``failed`` (store or
#: upstream unavailable: the client was told to try again).
MessageOutcome = Literal["queued", "relayed", "rejected", "failed"]


@dataclass(frozen=True)
class RelaySnapshot:
    connections: dict[str, int]  # protocol → open now
    logins: dict[tuple[str, str], int]  # (protocol, outcome) → count
    messages: dict[tuple[str, str], int]  # (mode, outcome) → count


@dataclass
class RelayCounters:
    _open: Counter[str] = field(default_factory=Counter)
    _logins: Counter[tuple[str, str]] = field(default_factory=Counter)
    _messages: Counter[tuple[str, str]] = field(default_factory=Counter)

    def opened(self, protocol: str) -> None:
        self._open[protocol] += 1

    def closed(self, protocol: str) -> None:
        self._open[protocol] -= 1

    def login(self, protocol: str, outcome: LoginOutcome) -> None:
        self._logins[(protocol, outcome)] += 1

    def message(self, mode: str, outcome: MessageOutcome) -> None:
        self._messages[(mode, outcome)] += 1

    def snapshot(self) -> RelaySnapshot:
        return RelaySnapshot(dict(self._open), dict(self._logins), dict(self._messages))
