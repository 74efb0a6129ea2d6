"""``drain``: deliver what is due, once. The scheduler calls it periodically; ``mailoauth
queue run`` and ``mailoauth send --queue`` call it from the shell.

One run: claim the due messages under a lease (one indexed read when nothing is due),
group them by mailbox, deliver each mailbox's batch over one connection (a few mailboxes
at a time), settle every message by :func:`~.policy.decide`, count the outcomes.

At least once, duplicates only after a crash: a message is marked sent in its own short
transaction right after the upstream accepted it; a process that dies between the two
leaves the message leased, and once the lease has run out another run sends it again —
with the same Message-ID, fixed when it was queued. A lease whose process is known to be
gone (killed on this machine, :mod:`.owners`) is taken over at the next run at once. Two
runs, in one process or on two nodes, never hold the same message: the claim is one write
transaction under the store's write lock, and a run whose lease was taken over cannot settle
the message any more.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final

import httpx

from mailoauth.errors import MailoauthError
from mailoauth.oauth.tokens import TokenService
from mailoauth.queue.delivery import Claimed, deliver_mailbox
from mailoauth.queue.owners import default_owner, gone
from mailoauth.queue.policy import DEFAULT_SCHEDULE, Random, RetrySchedule, decide
from mailoauth.store import QueuedMessage, QueueStatus, Store

__all__ = ["DEFAULT_LIMIT", "DrainOptions", "DrainReport", "drain"]

Clock = Callable[[], datetime]

#: Messages one run claims at most (the scheduler's next run takes the rest).
DEFAULT_LIMIT: Final = 500


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DrainOptions:
    """How a run delivers. ``lease``: how long a claim is exclusive — longer than a batch
    takes (each SMTP step has ``timeout``), or a slow run's messages are taken over."""

    schedule: RetrySchedule = DEFAULT_SCHEDULE
    lease: timedelta = timedelta(minutes=10)
    timeout: float = 30
    concurrency: int = 4  # mailboxes delivered at the same time
    rand: Random = field(default=random.random, repr=False)
    debug: bool = False  # keep transcripts even for mailboxes without their debug switch


@dataclass(frozen=True)
class DrainReport:
    """What one run did: messages by outcome, and what stopped a whole mailbox."""

    sent: int = 0
    retry_later: int = 0
    failed: int = 0
    dead: int = 0
    problems: tuple[str, ...] = ()

    def __str__(self) -> str:
        return (
            f"sent {self.sent}, retry later {self.retry_later}, failed {self.failed}, "
            f"dead {self.dead}"
        )


def _take_over_from_the_dead(store: Store, now: datetime) -> None:
    """End the leases of runs whose process is gone (killed), so their messages are
    delivered now rather than when the lease runs out (:mod:`.owners`)."""
    for owner in store.outbound_lease_owners(now=now):
        if gone(owner):
            store.release_outbound_leases(owner, now=now)


async def drain(
    store: Store,
    tokens: TokenService,
    http: httpx.AsyncClient | None,
    *,
    ca_file: str | None = None,
    limit: int | None = None,
    now: Clock = _utcnow,
    mailbox: str | None = None,
    owner: str | None = None,
    options: DrainOptions = DrainOptions(),
) -> DrainReport:
    """Deliver up to ``limit`` due messages (of ``mailbox`` only, if given) once.

    ``http`` is needed for mailboxes that send over Graph or the Gmail API. Errors of a
    message or a mailbox end up in the messages' ``last_error`` and the report; a store
    failure or a bug propagates after the other mailboxes' batches finished (their leases
    then run out, and the messages are tried again)."""
    owner = owner or default_owner()
    await asyncio.to_thread(_take_over_from_the_dead, store, now())
    claimed = await asyncio.to_thread(
        store.claim_outbound,
        owner,
        now=now(),
        ttl=options.lease,
        limit=limit or DEFAULT_LIMIT,
        mailbox=mailbox,
    )
    if not claimed:
        return DrainReport()
    by_mailbox: defaultdict[str, list[Claimed]] = defaultdict(list)
    for entry, data in claimed:
        by_mailbox[entry.mailbox].append((entry, data))
    counts: Counter[QueueStatus] = Counter()

    async def settle(entry: QueuedMessage, error: MailoauthError | None) -> None:
        at = now()
        outcome = decide(entry, error, at, options.schedule, options.rand)
        await asyncio.to_thread(
            store.settle_outbound,
            entry.id,
            owner,
            outcome.status,
            now=at,
            error=outcome.error,
            next_attempt_at=outcome.next_attempt_at,
        )
        counts[outcome.status] += 1

    gate = asyncio.Semaphore(max(options.concurrency, 1))

    async def one(name: str, batch: list[Claimed]) -> str | None:
        async with gate:
            return await deliver_mailbox(
                store,
                tokens,
                http,
                name,
                batch,
                settle,
                ca_file=ca_file,
                timeout=options.timeout,
                debug=options.debug,
            )

    results = await asyncio.gather(
        *(one(name, batch) for name, batch in by_mailbox.items()), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return DrainReport(
        sent=counts[QueueStatus.SENT],
        retry_later=counts[QueueStatus.QUEUED],
        failed=counts[QueueStatus.FAILED],
        dead=counts[QueueStatus.DEAD],
        problems=tuple(r for r in results if isinstance(r, str)),
    )
