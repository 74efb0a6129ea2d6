"""The durable outbound queue: accept = persisted; deliver with retries; dead letters.

::

    mailoauth.queue
    ├── accept      enqueue(): complete the headers, commit bytes + envelope, then return
    ├── group       GroupCommit: messages accepted at the same time share one commit
    ├── owners      lease owners that name their process; taking over a killed run's leases
    ├── nudge       Nudger: a delivery run now for a mailbox that just got mail
    ├── drain       drain(): claim what is due under a lease, deliver, settle, report
    ├── delivery    one mailbox's batch over SMTP (one login), Graph or the Gmail API
    └── policy      is_temporary / decide: sent, retry (backoff, full jitter), failed, dead

Statuses: ``queued`` → ``sending`` (leased) → ``sent`` | ``failed`` | ``dead``; a
temporary failure puts the message back to ``queued`` with its next attempt in the
future. The rows live in the store (:mod:`mailoauth.store.outbound`); ``mailoauth queue``
is the shell's view of them, docs/mail.md#queue the operator's.

``enqueue`` and the ``drain`` names load on first use (PEP 562 ``__getattr__``): they
bring the mail clients, which ``mailoauth --help`` (``DEFAULT_SCHEDULE``) does not need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mailoauth.lazy import lazy_exports
from mailoauth.queue.policy import DEFAULT_SCHEDULE, RetrySchedule, decide, is_temporary
from mailoauth.store import QueuedMessage, QueueStatus

if TYPE_CHECKING:
    from mailoauth.queue.accept import enqueue
    from mailoauth.queue.drain import DrainOptions, DrainReport, drain

#: Each lazily loaded name and the submodule that defines it.
_EXPORTS = {
    "enqueue": "accept",
    "DrainOptions": "drain",
    "DrainReport": "drain",
    "drain": "drain",
}

__all__ = [
    "DEFAULT_SCHEDULE",
    "DrainOptions",
    "DrainReport",
    "QueueStatus",
    "QueuedMessage",
    "RetrySchedule",
    "decide",
    "drain",
    "enqueue",
    "is_temporary",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
