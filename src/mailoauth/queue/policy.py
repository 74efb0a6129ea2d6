"""What happens to a message after an attempt: sent, retried later, failed or dead.

Pure: the error, the entry and the time come in, a :class:`Settlement` goes out; the
random source is injected, so every rule is a unit test without sleeping.

Classification (:func:`is_temporary`)::

    temporary, retried        MailError.temporary (4xx replies, a lost or refused
                              connection, a 4xx greeting), ProviderUnavailable, other
                              OAuthErrors, RemoteProtocolError; and what waits for a human
                              but needs no change to the message: AuthorizationNeeded,
                              ProviderRejected, a refused token (TokenRefused, after the
                              refresh-once) — the last error says what to do
    permanent, failed at once 5xx replies (MessageRefused: sender, recipients, content),
                              MessageTooLarge, TLS failures, ConfigError,
                              LocalProtocolError, NotFoundError
    anything else             temporary: the dead-letter age bounds it

Retry schedule (:class:`RetrySchedule`): exponential backoff with full jitter — attempt
``n`` is followed by a wait drawn uniformly from ``[0, min(cap, base · 2^(n-1))]`` (at
least ``minimum``, at least the server's ``Retry-After``), so a backlog behind an outage
does not come back all at once. A message still not sent ``max_age`` after it was queued
is dead: its last attempt is at that deadline at the latest.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from mailoauth.errors import (
    AuthorizationNeeded,
    ConfigError,
    LocalProtocolError,
    MailError,
    NotFoundError,
    ProviderUnavailable,
    TokenRefused,
)
from mailoauth.store import QueuedMessage, QueueStatus

__all__ = ["DEFAULT_SCHEDULE", "RetrySchedule", "Settlement", "decide", "is_temporary"]

Random = Callable[[], float]  # uniform in [0, 1)


@dataclass(frozen=True)
class RetrySchedule:
    """When a temporarily failed message is tried again, and when it is given up."""

    base: timedelta = timedelta(minutes=1)
    cap: timedelta = timedelta(hours=1)
    minimum: timedelta = timedelta(seconds=10)
    max_age: timedelta = timedelta(days=5)

    def delay(self, attempt: int, rand: Random, retry_after: float | None = None) -> timedelta:
        """The wait after the ``attempt``-th attempt (1 for the first) failed."""
        doublings = min(max(attempt - 1, 0), 20)  # 2^20 · base is past any sensible cap
        ceiling = min(self.cap, self.base * (1 << doublings))
        wait = max(ceiling * rand(), self.minimum)
        if retry_after is not None:
            wait = max(wait, timedelta(seconds=retry_after))
        return wait


DEFAULT_SCHEDULE = RetrySchedule()


@dataclass(frozen=True)
class Settlement:
    """The new status of a message after an attempt, with its next attempt or its error."""

    status: QueueStatus
    error: str | None = None
    next_attempt_at: datetime | None = None


def is_temporary(error: BaseException) -> bool:
    """Whether trying the same message again later may succeed (see the module's table)."""
    if isinstance(error, AuthorizationNeeded | TokenRefused):
        return True
    if isinstance(error, MailError):
        return error.temporary
    return not isinstance(error, ConfigError | LocalProtocolError | NotFoundError)


def decide(
    entry: QueuedMessage,
    error: BaseException | None,
    now: datetime,
    schedule: RetrySchedule = DEFAULT_SCHEDULE,
    rand: Random = random.random,
) -> Settlement:
    """The outcome of the attempt ``entry.attempts`` (claims count attempts) at ``now``."""
    if error is None:
        return Settlement(QueueStatus.SENT)
    reason = str(error) or type(error).__name__
    if not is_temporary(error):
        return Settlement(QueueStatus.FAILED, reason)
    deadline = entry.queued_at + schedule.max_age
    if now >= deadline:
        age = schedule.max_age
        return Settlement(QueueStatus.DEAD, f"not sent within {_days(age)}; last error: {reason}")
    retry_after = error.retry_after if isinstance(error, ProviderUnavailable) else None
    wait = schedule.delay(entry.attempts, rand, retry_after)
    return Settlement(QueueStatus.QUEUED, reason, min(now + wait, deadline))


def _days(age: timedelta) -> str:
    if age % timedelta(days=1):
        return f"{age.total_seconds() / 3600:g} hours"
    return f"{age.days} day{'s' if age.days != 1 else ''}"
