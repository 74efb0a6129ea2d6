"""What the scheduler did, as frozen values: for ``/metrics`` and (later) the console.

:meth:`Scheduler.status() <mailoauth.scheduler.runner.Scheduler.status>` builds a
:class:`SchedulerStatus` on the event loop; holders may keep and read it from any thread.
Errors are the ``str()`` of our exceptions, which never carry a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from mailoauth.scheduler.plan import JobKind
from mailoauth.scheduler.snapshot import GrantState

__all__ = [
    "Counters",
    "FetchOutcome",
    "MailboxStatus",
    "RefreshOutcome",
    "SchedulerStatus",
    "SendCounts",
]


@runtime_checkable
class SendCounts(Protocol):
    """What a queue drain may return so its sends are counted (``mailoauth_sends_total``)."""

    sent: int
    failed: int


@dataclass(frozen=True)
class FetchOutcome:
    at: datetime  # when the fetch ended
    delivered: int
    seconds: float
    error: str | None = None  # None: it went through


@dataclass(frozen=True)
class RefreshOutcome:
    at: datetime
    expires_at: datetime | None
    error: str | None = None


@dataclass(frozen=True)
class MailboxStatus:
    name: str
    state: GrantState | None
    next_poll: datetime | None  # None: not polled (no incoming.deliver, or blocked)
    next_refresh: datetime | None
    last_fetch: FetchOutcome | None
    last_refresh: RefreshOutcome | None
    running: tuple[JobKind, ...] = ()


@dataclass(frozen=True)
class Counters:
    """Totals since the service started (Prometheus counters)."""

    refreshes_ok: int = 0
    refreshes_failed: int = 0
    fetches_ok: int = 0
    fetches_failed: int = 0
    messages_fetched: int = 0
    drains_ok: int = 0
    drains_failed: int = 0
    sends_ok: int = 0
    sends_failed: int = 0


@dataclass(frozen=True)
class SchedulerStatus:
    started_at: datetime | None
    counters: Counters
    mailboxes: Mapping[str, MailboxStatus] = field(default_factory=dict)
    last_plan_at: datetime | None = None
    last_plan_error: str | None = None  # the store could not be read at the last pass
    running: int = 0  # jobs running or waiting for a slot
