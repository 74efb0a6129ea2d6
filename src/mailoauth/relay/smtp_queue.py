"""QUEUE mode of the SMTP relay: a message the relay accepted goes into the durable
outbound queue, and ``250 2.0.0 queued as <id>`` is answered only after the commit
(DESIGN.md invariant 1); then a delivery run for the mailbox is started at once.

The message is prepared like :func:`~mailoauth.queue.enqueue` does (in a worker thread) and
committed with the others arriving at the same time (:mod:`mailoauth.queue.group`: one
transaction for all, none acknowledged before it). A store failure answers
``451 4.3.0`` and nothing is claimed; a message that could never be sent (e.g. the
mailbox has no outgoing transport) ``554 5.3.0``. A burst of messages for one mailbox
costs two delivery runs, not one per message (:class:`~mailoauth.queue.nudge.Nudger`).
"""

from __future__ import annotations

import asyncio
import logging
from email.message import EmailMessage
from typing import Final

from mailoauth.errors import MailoauthError, NotFoundError, StoreError
from mailoauth.queue.accept import prepare_entry
from mailoauth.queue.group import GroupCommit
from mailoauth.queue.nudge import Nudger, Run
from mailoauth.relay.counters import MessageOutcome
from mailoauth.store import RelayUser, Store

__all__ = ["Nudge", "QueueMode"]

log = logging.getLogger("mailoauth.relay")

#: ``nudge(mailbox)``: one delivery run for a mailbox that just got a message.
Nudge = Run

_NOT_STORED: Final = "451 4.3.0 Could not store the message, nothing was accepted; try again later"


class QueueMode:
    """Enqueue, answer, nudge (see the module docstring); one per listener."""

    def __init__(self, store: Store, nudge: Nudge | None = None) -> None:
        self._store = store
        self._nudger = None if nudge is None else Nudger(nudge, who="relay")
        self._commits = GroupCommit(store)

    async def accept(
        self, user: RelayUser, message: EmailMessage, sender: str, recipients: list[str]
    ) -> tuple[str, MessageOutcome]:
        """The reply for the client, and what became of the message."""
        try:
            new = await asyncio.to_thread(
                prepare_entry, self._store, user.mailbox, message, (sender, recipients)
            )
            entry = await self._commits.add(user.mailbox, new)
        except (StoreError, NotFoundError) as exc:
            log.error("relay: could not store a message from %s: %s", user.name, exc)
            return _NOT_STORED, "failed"
        except MailoauthError as exc:
            log.warning("relay: refused a message from %s: %s", user.name, exc)
            return f"554 5.3.0 {exc}", "rejected"
        except Exception:
            log.exception("relay: could not store a message from %s", user.name)
            return _NOT_STORED, "failed"
        log.info(
            "relay: queued %s from %s for mailbox %s (%d recipients)",
            entry.id,
            user.name,
            user.mailbox,
            len(recipients),
        )
        if self._nudger is not None:
            self._nudger.nudge(user.mailbox)
        return f"250 2.0.0 queued as {entry.id}", "queued"

    async def wait(self) -> None:
        """Let the delivery runs started here finish (at shutdown)."""
        if self._nudger is not None:
            await self._nudger.wait()
