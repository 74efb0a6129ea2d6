"""SqlStore's methods over rows that hold no secret: mail state and the outbound queue.

Mixed into :class:`~mailoauth.store.sql.SqlStore`, which keeps providers, mailboxes,
grants and the key. Each method is one transaction over the connection-level functions of
:mod:`.mailstate` (fetch cursors, seen ids, transcripts) or :mod:`.outbound` (the queue).
Nothing here seals or opens a secret, so these transactions need no key.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from mailoauth.errors import NotFoundError
from mailoauth.models import TranscriptLine
from mailoauth.store import mailstate, outbound
from mailoauth.store.engine import read_transaction, write_transaction
from mailoauth.store.mailstate import TRANSCRIPT_KEEP
from mailoauth.store.outbound import NewMessage, QueuedMessage, QueueStatus
from mailoauth.store.schema import mailboxes

__all__ = ["MailStateMethods", "OutboundMethods", "mailbox_id"]

#: Rows ``list_outbound`` returns unless told otherwise.
LIST_LIMIT = 1000


def mailbox_id(conn: Connection, name: str) -> int:
    found = conn.execute(sa.select(mailboxes.c.id).where(mailboxes.c.name == name)).scalar()
    if found is None:
        raise NotFoundError("mailbox", name)
    return int(found)


class MailStateMethods:
    """IMAP cursors, seen ids and debug transcripts (see :mod:`.mailstate`)."""

    _engine: Engine
    _clock: Callable[[], datetime]

    def get_fetch_cursor(self, mailbox: str, folder: str) -> tuple[str, str] | None:
        with read_transaction(self._engine) as conn:
            return mailstate.cursor(conn, mailbox_id(conn, mailbox), folder)

    def put_fetch_cursor(self, mailbox: str, folder: str, validity: str, position: str) -> None:
        with write_transaction(self._engine) as conn:
            owner = mailbox_id(conn, mailbox)
            mailstate.put_cursor(conn, owner, folder, validity, position, self._clock())

    def fetch_seen(self, mailbox: str, folder: str) -> set[str]:
        with read_transaction(self._engine) as conn:
            return mailstate.seen(conn, mailbox_id(conn, mailbox), folder)

    def add_fetch_seen(self, mailbox: str, folder: str, item: str) -> None:
        with write_transaction(self._engine) as conn:
            mailstate.add_seen(conn, mailbox_id(conn, mailbox), folder, item)

    def keep_fetch_seen(self, mailbox: str, folder: str, present: Collection[str]) -> int:
        with write_transaction(self._engine) as conn:
            return mailstate.keep_seen(conn, mailbox_id(conn, mailbox), folder, present)

    def append_transcript(
        self, mailbox: str, lines: Sequence[TranscriptLine], *, keep: int = TRANSCRIPT_KEEP
    ) -> None:
        with write_transaction(self._engine) as conn:
            mailstate.append_transcript(conn, mailbox_id(conn, mailbox), lines, keep)

    def read_transcript(
        self, mailbox: str, *, limit: int = TRANSCRIPT_KEEP
    ) -> list[TranscriptLine]:
        with read_transaction(self._engine) as conn:
            return mailstate.read_transcript(conn, mailbox_id(conn, mailbox), limit)

    def clear_transcript(self, mailbox: str) -> int:
        with write_transaction(self._engine) as conn:
            return mailstate.clear_transcript(conn, mailbox_id(conn, mailbox))


class OutboundMethods:
    """The durable outbound queue (see :mod:`.outbound`); times come from the caller."""

    _engine: Engine

    def queue_message(self, mailbox: str, message: NewMessage, *, now: datetime) -> QueuedMessage:
        """Store an accepted message; returns once it is committed (durable)."""
        (entry,) = self.queue_messages([(mailbox, message)], now=now)
        return entry

    def queue_messages(
        self, messages: Sequence[tuple[str, NewMessage]], *, now: datetime
    ) -> list[QueuedMessage]:
        """Store several accepted messages (``(mailbox, message)``) in one transaction —
        one commit, one fsync — all or none; returns once it is committed."""
        with write_transaction(self._engine) as conn:
            ids: dict[str, int] = {}
            entries = []
            for mailbox, message in messages:
                if mailbox not in ids:
                    ids[mailbox] = mailbox_id(conn, mailbox)
                entries.append(outbound.add(conn, ids[mailbox], message, now))
            return [outbound.get(conn, entry_id) for entry_id in entries]

    def claim_outbound(
        self,
        owner: str,
        *,
        now: datetime,
        ttl: timedelta,
        limit: int,
        mailbox: str | None = None,
    ) -> list[tuple[QueuedMessage, bytes]]:
        """Lease due messages to ``owner``. Nothing due costs one indexed read and no write
        lock, so a scheduler may ask often."""
        with read_transaction(self._engine) as conn:
            owner_id = None if mailbox is None else mailbox_id(conn, mailbox)
            if not outbound.is_due(conn, now, owner_id):
                return []
        with write_transaction(self._engine) as conn:
            return outbound.claim(
                conn, owner, now=now, until=now + ttl, limit=limit, mailbox_id=owner_id
            )

    def outbound_lease_owners(self, *, now: datetime) -> list[str]:
        """Who holds running leases (one indexed read)."""
        with read_transaction(self._engine) as conn:
            return outbound.lease_owners(conn, now)

    def release_outbound_leases(self, owner: str, *, now: datetime) -> int:
        """End ``owner``'s running leases now (its process is gone); how many."""
        with write_transaction(self._engine) as conn:
            return outbound.release(conn, owner, now)

    def settle_outbound(
        self,
        entry_id: int,
        owner: str,
        status: QueueStatus,
        *,
        now: datetime,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> bool:
        with write_transaction(self._engine) as conn:
            return outbound.settle(
                conn, entry_id, owner, status, now=now, error=error, next_attempt_at=next_attempt_at
            )

    def list_outbound(
        self,
        *,
        statuses: Sequence[QueueStatus] = (),
        mailbox: str | None = None,
        limit: int = LIST_LIMIT,
    ) -> list[QueuedMessage]:
        with read_transaction(self._engine) as conn:
            owner_id = None if mailbox is None else mailbox_id(conn, mailbox)
            return outbound.listing(conn, statuses=statuses, mailbox_id=owner_id, limit=limit)

    def outbound_counts(self) -> dict[QueueStatus, int]:
        """Messages per status, e.g. the queue depth for /metrics."""
        with read_transaction(self._engine) as conn:
            return outbound.counts(conn)

    def get_outbound(self, entry_id: int) -> QueuedMessage:
        with read_transaction(self._engine) as conn:
            return outbound.get(conn, entry_id)

    def outbound_data(self, entry_id: int) -> bytes:
        with read_transaction(self._engine) as conn:
            return outbound.data(conn, entry_id)

    def retry_outbound(self, entry_id: int, *, now: datetime) -> QueuedMessage:
        with write_transaction(self._engine) as conn:
            return outbound.requeue(conn, entry_id, now)

    def purge_outbound(self, entry_id: int) -> QueuedMessage:
        with write_transaction(self._engine) as conn:
            return outbound.purge(conn, entry_id)

    def purge_outbound_where(
        self, *, sent_before: datetime | None = None, mailbox: str | None = None
    ) -> int:
        with write_transaction(self._engine) as conn:
            owner_id = None if mailbox is None else mailbox_id(conn, mailbox)
            return outbound.purge_where(conn, sent_before=sent_before, mailbox_id=owner_id)
