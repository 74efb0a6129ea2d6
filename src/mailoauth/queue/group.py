"""Group commit: messages accepted at the same time share one transaction.

Every accepted message must be committed — fsynced — before its ``250`` (DESIGN.md
invariant 1). One transaction per message makes concurrent clients queue behind each
other's fsync on the store's single write lock. :class:`GroupCommit` lets them share:
while one commit is in flight, the messages that arrive wait together and go in the next
transaction, all or none. A lone client pays one transaction per message as before (no
timer, no added latency); eight clients at once pay about one fsync per round.

If a commit fails, every message of that round gets the error and none is acknowledged
(the clients are told to try again). A caller that goes away while waiting (the client
disconnected) does not stop the round: its message may be stored though never
acknowledged, which a retrying client turns into a duplicate with the same Message-ID —
the same as a crash between commit and reply.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

from mailoauth.store import NewMessage, QueuedMessage, Store

__all__ = ["GroupCommit"]

Clock = Callable[[], datetime]

_Waiting = tuple[str, NewMessage, "asyncio.Future[QueuedMessage]"]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class GroupCommit:
    """``await add(mailbox, entry)`` returns once ``entry`` is committed (on the event
    loop; the store's write runs in a worker thread)."""

    def __init__(self, store: Store, *, now: Clock = _utcnow) -> None:
        self._store = store
        self._now = now
        self._waiting: list[_Waiting] = []
        self._committer: asyncio.Task[None] | None = None
        self.commits = 0  # transactions so far (for tests and the benchmark)

    async def add(self, mailbox: str, entry: NewMessage) -> QueuedMessage:
        future: asyncio.Future[QueuedMessage] = asyncio.get_running_loop().create_future()
        # Mark an error seen even when the caller went away (no "never retrieved" noise).
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        self._waiting.append((mailbox, entry, future))
        if self._committer is None:
            self._committer = asyncio.ensure_future(self._commit_rounds())
        return await asyncio.shield(future)

    async def _commit_rounds(self) -> None:
        try:
            while self._waiting:
                round_, self._waiting = self._waiting, []
                batch = [(mailbox, entry) for mailbox, entry, _ in round_]
                try:
                    stored = await asyncio.to_thread(
                        self._store.queue_messages, batch, now=self._now()
                    )
                except Exception as exc:  # every waiter of the round gets it
                    for _, _, future in round_:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for (_, _, future), entry in zip(round_, stored, strict=True):
                        if not future.done():
                            future.set_result(entry)
                self.commits += 1
        finally:
            self._committer = None
