"""The outbound queue's rows: accept, claim under a lease, settle, list, retry, purge.

Functions on an open connection, called by the store inside its transactions (like
:mod:`.leases` and :mod:`.mailstate`); the policy (when to retry, when a message is dead)
lives in :mod:`mailoauth.queue`. Statuses::

    queued ──claim──► sending ──settle──► sent | failed | dead
      ▲                  │ (lease ran out: claimable again)
      └──settle (retry)──┘            retry: failed | dead | queued ──► queued, due now

A claim is one write transaction under the store's write lock (SQLite ``BEGIN
IMMEDIATE``, a PostgreSQL advisory lock), so two claimers never take the same row. While
a row is ``sending``, ``next_attempt_at`` holds the end of its lease, which makes "due"
one condition on one index: ``status IN (queued, sending) AND next_attempt_at <= now``.
Settling checks the lease owner: a claimer whose lease was taken over changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mailoauth.errors import ConfigError, NotFoundError
from mailoauth.store.schema import mailboxes, outbound_messages

__all__ = [
    "NewMessage",
    "QueueStatus",
    "QueuedMessage",
    "add",
    "claim",
    "counts",
    "data",
    "forget",
    "get",
    "is_due",
    "listing",
    "pending",
    "purge",
    "purge_where",
    "requeue",
    "settle",
]

_T: Final = outbound_messages


class QueueStatus(StrEnum):
    QUEUED = "queued"  # waiting for its next attempt
    SENDING = "sending"  # leased by a delivery run
    SENT = "sent"  # the upstream accepted it
    FAILED = "failed"  # refused for good (5xx, bad recipients, too large, bad config)
    DEAD = "dead"  # still not sent when the dead-letter age ran out


_WAITING: Final = (QueueStatus.QUEUED, QueueStatus.SENDING)


@dataclass(frozen=True)
class NewMessage:
    """What is stored for one accepted message: its headers are final (Message-ID, Date)."""

    message_id: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    data: bytes


@dataclass(frozen=True)
class QueuedMessage:
    """One queue entry without its bytes (``Store.outbound_data`` reads those)."""

    id: int
    mailbox: str
    status: QueueStatus
    message_id: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    size: int
    created_at: datetime
    queued_at: datetime
    next_attempt_at: datetime
    attempts: int = 0
    last_error: str | None = None
    last_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    lease_owner: str | None = None


_ENTRY_COLUMNS: Final = [c for c in _T.c if c.name not in ("data", "mailbox_id")]
_SELECT: Final = sa.select(*_ENTRY_COLUMNS, mailboxes.c.name.label("mailbox")).join_from(
    _T, mailboxes, _T.c.mailbox_id == mailboxes.c.id
)


def _entry(row: Any) -> QueuedMessage:
    values = {k: v for k, v in row._mapping.items() if k != "data"}
    values["status"] = QueueStatus(values["status"])
    values["recipients"] = tuple(json.loads(values["recipients"]))
    return QueuedMessage(**values)


def _due(now: datetime) -> sa.ColumnElement[bool]:
    return sa.and_(_T.c.status.in_([s.value for s in _WAITING]), _T.c.next_attempt_at <= now)


def add(conn: Connection, mailbox_id: int, message: NewMessage, now: datetime) -> int:
    """Store an accepted message, due at once; its id."""
    result = conn.execute(
        sa.insert(_T).values(
            mailbox_id=mailbox_id,
            status=QueueStatus.QUEUED.value,
            next_attempt_at=now,
            message_id=message.message_id,
            sender=message.sender,
            recipients=json.dumps(list(message.recipients)),
            subject=message.subject,
            size=len(message.data),
            data=message.data,
            attempts=0,
            created_at=now,
            queued_at=now,
        )
    )
    (key,) = result.inserted_primary_key or (None,)
    assert isinstance(key, int)
    return key


def is_due(conn: Connection, now: datetime, mailbox_id: int | None = None) -> bool:
    """Whether anything is due: one query on ``ix_outbound_messages_due``."""
    query = sa.select(_T.c.id).where(_due(now)).limit(1)
    if mailbox_id is not None:
        query = query.where(_T.c.mailbox_id == mailbox_id)
    return conn.execute(query).first() is not None


def claim(
    conn: Connection,
    owner: str,
    *,
    now: datetime,
    until: datetime,
    limit: int,
    mailbox_id: int | None = None,
) -> list[tuple[QueuedMessage, bytes]]:
    """Lease up to ``limit`` due messages (oldest due first) to ``owner`` until ``until``;
    each claim counts as an attempt. Also takes over leases that ran out."""
    query = sa.select(_T.c.id).where(_due(now)).order_by(_T.c.next_attempt_at, _T.c.id)
    if mailbox_id is not None:
        query = query.where(_T.c.mailbox_id == mailbox_id)
    ids = list(conn.execute(query.limit(limit)).scalars())
    if not ids:
        return []
    conn.execute(
        sa.update(_T)
        .where(_T.c.id.in_(ids))
        .values(
            status=QueueStatus.SENDING.value,
            lease_owner=owner,
            next_attempt_at=until,
            attempts=_T.c.attempts + 1,
            last_attempt_at=now,
        )
    )
    found = conn.execute(
        _SELECT.add_columns(_T.c.data).where(_T.c.id.in_(ids)).order_by(_T.c.id)
    ).all()
    return [(_entry(row), row.data) for row in found]


def lease_owners(conn: Connection, now: datetime) -> list[str]:
    """The owners of leases still running (``sending`` and not yet run out)."""
    query = (
        sa.select(_T.c.lease_owner)
        .where(_T.c.status == QueueStatus.SENDING.value, _T.c.next_attempt_at > now)
        .distinct()
    )
    return [owner for owner in conn.execute(query).scalars() if owner]


def release(conn: Connection, owner: str, now: datetime) -> int:
    """End ``owner``'s running leases now: its messages become due and claimable (and the
    owner can no longer settle them once claimed by another run)."""
    result = conn.execute(
        sa.update(_T)
        .where(
            _T.c.lease_owner == owner,
            _T.c.status == QueueStatus.SENDING.value,
            _T.c.next_attempt_at > now,
        )
        .values(next_attempt_at=now)
    )
    return int(result.rowcount)


def settle(
    conn: Connection,
    entry_id: int,
    owner: str,
    status: QueueStatus,
    *,
    now: datetime,
    error: str | None = None,
    next_attempt_at: datetime | None = None,
) -> bool:
    """End ``owner``'s lease on a message with its outcome: ``sent``, ``failed``, ``dead``,
    or ``queued`` again at ``next_attempt_at``. False when the lease is no longer
    ``owner``'s (it ran out and another run took the message over)."""
    values: dict[str, Any] = {"status": status.value, "lease_owner": None}
    if status is QueueStatus.SENT:
        values["sent_at"] = now
    else:
        values["last_error"] = error
    values["next_attempt_at"] = next_attempt_at or now
    result = conn.execute(
        sa.update(_T)
        .where(
            _T.c.id == entry_id,
            _T.c.lease_owner == owner,
            _T.c.status == QueueStatus.SENDING.value,
        )
        .values(**values)
    )
    return bool(result.rowcount)


def get(conn: Connection, entry_id: int) -> QueuedMessage:
    row = conn.execute(_SELECT.where(_T.c.id == entry_id)).first()
    if row is None:
        raise NotFoundError("queued message", str(entry_id), "see `mailoauth queue list`")
    return _entry(row)


def data(conn: Connection, entry_id: int) -> bytes:
    found = conn.execute(sa.select(_T.c.data).where(_T.c.id == entry_id)).scalar()
    if found is None:
        raise NotFoundError("queued message", str(entry_id), "see `mailoauth queue list`")
    return bytes(found)


def listing(
    conn: Connection,
    *,
    statuses: Sequence[QueueStatus] = (),
    mailbox_id: int | None = None,
    limit: int,
) -> list[QueuedMessage]:
    """Newest first."""
    query = _SELECT.order_by(_T.c.id.desc()).limit(limit)
    if statuses:
        query = query.where(_T.c.status.in_([s.value for s in statuses]))
    if mailbox_id is not None:
        query = query.where(_T.c.mailbox_id == mailbox_id)
    return [_entry(row) for row in conn.execute(query)]


def requeue(conn: Connection, entry_id: int, now: datetime) -> QueuedMessage:
    """A failed, dead or waiting message, due now, with a fresh dead-letter age."""
    entry = get(conn, entry_id)
    if entry.status in (QueueStatus.SENT, QueueStatus.SENDING):
        raise ConfigError(
            "id",
            f"message {entry_id} is {entry.status.value}",
            "only failed, dead or queued messages can be retried",
        )
    conn.execute(
        sa.update(_T)
        .where(_T.c.id == entry_id)
        .values(status=QueueStatus.QUEUED.value, next_attempt_at=now, queued_at=now)
    )
    return get(conn, entry_id)


def purge(conn: Connection, entry_id: int) -> QueuedMessage:
    """Delete one message (not while a run is sending it); what was deleted."""
    entry = get(conn, entry_id)
    if entry.status is QueueStatus.SENDING:
        raise ConfigError(
            "id",
            f"message {entry_id} is being sent by {entry.lease_owner} right now",
            f"try again after {entry.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC",
        )
    conn.execute(sa.delete(_T).where(_T.c.id == entry_id))
    return entry


def purge_where(
    conn: Connection, *, sent_before: datetime | None = None, mailbox_id: int | None = None
) -> int:
    """Delete the sent messages older than ``sent_before``, and/or every message of a
    mailbox that no run is sending; how many."""
    if sent_before is None and mailbox_id is None:
        raise ConfigError("purge", "needs a message id, an age or a mailbox", "name one")
    query = sa.delete(_T).where(_T.c.status != QueueStatus.SENDING.value)
    if sent_before is not None:
        query = query.where(_T.c.status == QueueStatus.SENT.value, _T.c.sent_at < sent_before)
    if mailbox_id is not None:
        query = query.where(_T.c.mailbox_id == mailbox_id)
    return conn.execute(query).rowcount


def counts(conn: Connection) -> dict[QueueStatus, int]:
    """Messages per status (every status present, zero or not): the queue's depth."""
    found = conn.execute(sa.select(_T.c.status, sa.func.count()).group_by(_T.c.status)).all()
    by_status = {QueueStatus(status): int(count) for status, count in found}
    return {status: by_status.get(status, 0) for status in QueueStatus}


def pending(conn: Connection, mailbox_id: int) -> int:
    """How many of a mailbox's messages are not sent (any other status)."""
    query = sa.select(sa.func.count()).where(
        _T.c.mailbox_id == mailbox_id, _T.c.status != QueueStatus.SENT.value
    )
    return int(conn.execute(query).scalar() or 0)


def forget(conn: Connection, mailbox_id: int) -> None:
    """Remove a mailbox's messages (it is being deleted, and :func:`pending` found none
    that is not sent)."""
    conn.execute(sa.delete(_T).where(_T.c.mailbox_id == mailbox_id))
