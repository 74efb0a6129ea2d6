"""The service's clock-work: refresh-ahead, mailbox polling, queue drain, expiry warnings.

::

    mailoauth.scheduler
    ├── snapshot   what a planning pass reads: mailboxes, providers, grants (+ states)
    ├── plan       Planner: which job is due when (pure; times are arguments)
    ├── alerts     expiry and authorization warnings, each said once (pure)
    ├── runner     Scheduler: the asyncio loop, one task per job, timeouts, slots
    ├── status     frozen views of what it did (``/metrics``, the console)
    └── work       ServiceWork: the jobs on the real store, token service and mail layer

Jobs (times in :mod:`.plan`'s docstring):

* **refresh** — every mailbox whose grant can be renewed without a human is refreshed
  ``refresh_margin`` (10 min) before expiry (half the lifetime for shorter tokens), so it
  stays connected when nobody sends, and a revoked grant turns into
  ``needs_authorization`` within minutes. Password, client-credentials and
  service-account mailboxes without a token get one at start.
* **fetch** — every mailbox with ``incoming.deliver`` is fetched
  (:func:`mailoauth.mail.fetch`) every ``incoming.poll_interval`` minutes at a stable
  per-mailbox offset; the first poll comes within ``first_poll_spread`` (2 s) of start-up
  or of the mailbox appearing.
* **drain** — the outbound queue's ``drain()`` every ``drain_every`` (15 s), if given.
* **alerts** — client secrets expiring within 30 days (once per provider per day) and grants
  changing state (once per change).

The store is re-read every ``replan_every`` (30 s): mailboxes added, changed or removed by
the CLI while the service runs are picked up without a restart. Jobs run as separate
tasks with timeouts and concurrency limits (:mod:`.runner`); a failing or slow mailbox
never delays another.
"""

from __future__ import annotations

from mailoauth.scheduler.plan import Job, JobKind, Planner, SchedulerOptions
from mailoauth.scheduler.runner import Drain, Scheduler, Work
from mailoauth.scheduler.snapshot import GrantState, Snapshot, load_snapshot, state_counts
from mailoauth.scheduler.status import (
    Counters,
    FetchOutcome,
    MailboxStatus,
    RefreshOutcome,
    SchedulerStatus,
    SendCounts,
)
from mailoauth.scheduler.work import ServiceWork

__all__ = [
    "Counters",
    "Drain",
    "FetchOutcome",
    "GrantState",
    "Job",
    "JobKind",
    "MailboxStatus",
    "Planner",
    "RefreshOutcome",
    "Scheduler",
    "SchedulerOptions",
    "SchedulerStatus",
    "SendCounts",
    "ServiceWork",
    "Snapshot",
    "Work",
    "load_snapshot",
    "state_counts",
]
