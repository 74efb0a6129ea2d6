"""Start a delivery run now for a mailbox that just got a message, instead of at the
scheduler's next drain (every 15 s).

The SMTP relay (queue mode) and the REST API's ``send`` nudge after the message is
committed. While a run goes for a mailbox, later nudges only ask for one more run after
it: a burst of messages costs two runs, not one per message. A run that fails is logged
and harmless — the messages are stored and the scheduler's drains retry them; one cut
short at shutdown leaves its leases to be taken over (:mod:`.owners`). :meth:`Nudger.wait`
lets the runs in flight finish before the service stops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

__all__ = ["Nudger", "Run"]

log = logging.getLogger("mailoauth.queue")

#: ``run(mailbox)``: one delivery run for that mailbox (``drain(..., mailbox=NAME)``).
Run = Callable[[str], Awaitable[object]]


class Nudger:
    def __init__(self, run: Run, *, who: str = "queue") -> None:
        self._run = run
        self._who = who  # for the log: "relay", "api"
        self._running: dict[str, asyncio.Future[None]] = {}  # mailbox → its delivery run
        self._again: set[str] = set()  # mailboxes that got mail while their run was going

    def nudge(self, mailbox: str) -> None:
        """Call on the event loop, after the message is committed."""
        if mailbox in self._running:
            self._again.add(mailbox)
            return
        self._running[mailbox] = asyncio.ensure_future(self._runs(mailbox))

    async def _runs(self, mailbox: str) -> None:
        try:
            while True:
                self._again.discard(mailbox)
                try:
                    await self._run(mailbox)
                except Exception as exc:  # the scheduler's next drain tries again
                    log.error("%s: delivery run for %s failed: %s", self._who, mailbox, exc)
                if mailbox not in self._again:
                    return
        finally:
            del self._running[mailbox]

    async def wait(self) -> None:
        """Let the delivery runs started here finish (at shutdown)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)
