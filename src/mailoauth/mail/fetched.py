"""What every fetcher (IMAP, POP3, Graph, Gmail API) shares: the message it hands over,
the handler that takes it, and the ledger that remembers what was taken.

The delivery rule (no loss, at most a re-delivery)::

    for each new message, oldest first:
        data = download(message)            # nothing changed at the server yet
        await deliver(FetchedMessage(...))  # raises = not accepted: stop here
        after_fetch(message)                # seen / move / delete at the server
        await ledger.record(...)            # remembered: never fetched again

A crash before ``deliver`` returns loses nothing (the message is fetched next time); a
crash between ``deliver`` and ``record`` delivers it once more. Handlers should
therefore be idempotent on ``Message-ID`` where it matters (Maildir and webhooks get
``uid`` for that).

Two kinds of memory, both kept per mailbox and folder by the store:

* a **cursor** (IMAP): ``validity`` = UIDVALIDITY, ``position`` = the highest UID taken.
  A changed UIDVALIDITY voids the cursor: the folder is fetched again from the start.
* a **seen set** (POP3 UIDL, Graph and Gmail message ids): ids already taken. After a
  listing the set is trimmed to the ids the server still has, so it stays small.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

__all__ = [
    "Cursor",
    "Deliver",
    "FetchLedger",
    "FetchReport",
    "FetchedMessage",
    "MemoryLedger",
]


@dataclass(frozen=True)
class FetchedMessage:
    """One message as the server had it (raw RFC 5322 bytes)."""

    mailbox: str
    folder: str
    uid: str  # IMAP "UIDVALIDITY.UID", POP3 UIDL, Graph/Gmail message id
    data: bytes


#: Takes a message; returning means accepted. Raising anything means "not now": the
#: fetch stops, the message stays new at the server and is offered again next time.
Deliver = Callable[[FetchedMessage], Awaitable[None]]


@dataclass(frozen=True)
class Cursor:
    validity: str
    position: str


class FetchLedger(Protocol):
    """What a fetcher remembers between runs, for one mailbox (store-backed in
    production, :class:`MemoryLedger` in tests)."""

    async def cursor(self, folder: str) -> Cursor | None: ...
    async def advance(self, folder: str, cursor: Cursor) -> None: ...
    async def seen(self, folder: str) -> set[str]: ...
    async def add_seen(self, folder: str, item: str) -> None: ...
    async def keep_seen(self, folder: str, present: Iterable[str]) -> None:
        """Forget every seen id not in ``present`` (the server no longer has it)."""
        ...


@dataclass
class FetchReport:
    """What one fetch run did."""

    mailbox: str
    folder: str
    delivered: list[str] = field(default_factory=list)  # uids, in order
    skipped: int = 0  # already taken before (seen set / cursor)
    remaining: int = 0  # new at the server but not taken this run (limit, handler refused)
    actions: int = 0  # after-fetch actions done (seen / move / delete)
    error: str | None = None  # why the run stopped early, if it did
    notes: list[str] = field(default_factory=list)  # e.g. "UIDVALIDITY changed: refetching"


@dataclass
class MemoryLedger:
    """A ledger in memory, for tests and one-off library calls."""

    cursors: dict[str, Cursor] = field(default_factory=dict)
    seen_ids: dict[str, set[str]] = field(default_factory=dict)

    async def cursor(self, folder: str) -> Cursor | None:
        return self.cursors.get(folder)

    async def advance(self, folder: str, cursor: Cursor) -> None:
        self.cursors[folder] = cursor

    async def seen(self, folder: str) -> set[str]:
        return set(self.seen_ids.get(folder, set()))

    async def add_seen(self, folder: str, item: str) -> None:
        self.seen_ids.setdefault(folder, set()).add(item)

    async def keep_seen(self, folder: str, present: Iterable[str]) -> None:
        keep = set(present)
        self.seen_ids[folder] = {item for item in self.seen_ids.get(folder, set()) if item in keep}
