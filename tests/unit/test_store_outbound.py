"""The outbound queue's rows in SQLite: claims are leases no other owner can take until
they run out, settling needs the lease, retry and purge keep their promises."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from mailoauth.errors import ConfigError, NotFoundError
from mailoauth.store import NewMessage, QueueStatus, open_store
from tests import store_samples as s
from tests.stores import sqlite_settings

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LEASE = timedelta(minutes=10)
NAME = "sales"


@pytest.fixture
def settings(tmp_path):
    home = tmp_path / "home"
    return sqlite_settings(home)


@pytest.fixture
def store(settings):
    store = open_store(settings)
    store.put_provider(s.microsoft())
    store.put_mailbox(s.smtp_imap())
    yield store
    store.close()


def add(store, n: int = 1, at: datetime = T0) -> list[int]:
    ids = []
    for i in range(n):
        data = f"Message-ID: <{i}@x>\r\nSubject: n{i}\r\n\r\nbody {i}\r\n".encode()
        new = NewMessage(f"<{i}@x>", "sales@contoso.com", ("bob@example.com",), f"n{i}", data)
        ids.append(store.queue_message(NAME, new, now=at).id)
    return ids


def test_a_claim_is_exclusive_until_its_lease_runs_out(store):
    ids = add(store, 3)
    first = store.claim_outbound("node-a", now=T0, ttl=LEASE, limit=2)
    assert [e.id for e, _ in first] == ids[:2]
    assert all(e.status is QueueStatus.SENDING and e.lease_owner == "node-a" for e, _ in first)
    assert first[0][1].endswith(b"body 0\r\n")
    assert [e.attempts for e, _ in first] == [1, 1]  # a claim counts as an attempt
    # Another owner gets only what node-a does not hold, however often it asks.
    second = store.claim_outbound("node-b", now=T0 + timedelta(minutes=9), ttl=LEASE, limit=10)
    assert [e.id for e, _ in second] == ids[2:]
    assert store.claim_outbound("node-b", now=T0 + timedelta(minutes=9), ttl=LEASE, limit=10) == []


def test_an_expired_lease_is_taken_over_and_the_old_owner_cannot_settle(store):
    (entry_id,) = add(store)
    store.claim_outbound("crashed", now=T0, ttl=LEASE, limit=10)
    later = T0 + LEASE + timedelta(seconds=1)
    ((taken, _),) = store.claim_outbound("rescuer", now=later, ttl=LEASE, limit=10)
    assert taken.id == entry_id
    assert taken.lease_owner == "rescuer"
    assert taken.attempts == 2
    assert not store.settle_outbound(entry_id, "crashed", QueueStatus.SENT, now=later)
    assert store.settle_outbound(entry_id, "rescuer", QueueStatus.SENT, now=later)
    done = store.get_outbound(entry_id)
    assert (done.status, done.sent_at, done.lease_owner) == (QueueStatus.SENT, later, None)


def test_a_retry_later_is_not_due_before_its_time(store):
    (entry_id,) = add(store)
    store.claim_outbound("a", now=T0, ttl=LEASE, limit=10)
    next_at = T0 + timedelta(minutes=5)
    store.settle_outbound(
        entry_id, "a", QueueStatus.QUEUED, now=T0, error="451 try later", next_attempt_at=next_at
    )
    assert store.claim_outbound("a", now=next_at - timedelta(seconds=1), ttl=LEASE, limit=9) == []
    ((again, _),) = store.claim_outbound("a", now=next_at, ttl=LEASE, limit=9)
    assert again.last_error == "451 try later"


def test_nothing_due_is_answered_without_taking_the_write_lock(store, settings):
    add(store, 1, at=T0 + timedelta(hours=1))
    # Another process holds SQLite's write lock: a claim that would need it would wait.
    blocker = sqlite3.connect(settings.data_dir / "mailoauth.db", timeout=0)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        assert store.claim_outbound("a", now=T0, ttl=LEASE, limit=10) == []
    finally:
        blocker.rollback()
        blocker.close()


def test_retry_requeues_failed_messages_with_a_fresh_window_but_not_sent_ones(store):
    first, second = add(store, 2)
    store.claim_outbound("a", now=T0, ttl=LEASE, limit=10)
    store.settle_outbound(first, "a", QueueStatus.FAILED, now=T0, error="550 no such user")
    store.settle_outbound(second, "a", QueueStatus.SENT, now=T0)
    later = T0 + timedelta(days=1)
    again = store.retry_outbound(first, now=later)
    assert (again.status, again.next_attempt_at, again.queued_at) == (
        QueueStatus.QUEUED,
        later,
        later,
    )
    assert again.created_at == T0
    with pytest.raises(ConfigError, match="is sent"):
        store.retry_outbound(second, now=later)
    with pytest.raises(NotFoundError, match="queue list"):
        store.retry_outbound(999, now=later)


def test_list_filters_and_purge(store):
    ids = add(store, 3)
    store.claim_outbound("a", now=T0, ttl=LEASE, limit=1)
    store.settle_outbound(ids[0], "a", QueueStatus.SENT, now=T0)
    assert [e.id for e in store.list_outbound()] == ids[::-1]  # newest first
    assert [e.id for e in store.list_outbound(statuses=[QueueStatus.SENT])] == ids[:1]
    depth = store.outbound_counts()
    assert (depth[QueueStatus.QUEUED], depth[QueueStatus.SENT], depth[QueueStatus.DEAD]) == (
        2,
        1,
        0,
    )
    assert store.purge_outbound_where(sent_before=T0 - timedelta(days=1)) == 0
    assert store.purge_outbound_where(sent_before=T0 + timedelta(seconds=1)) == 1
    store.claim_outbound("b", now=T0, ttl=LEASE, limit=1)  # ids[1] is being sent
    with pytest.raises(ConfigError, match="being sent by b"):
        store.purge_outbound(ids[1])
    assert store.purge_outbound(ids[2]).id == ids[2]
    assert [e.id for e in store.list_outbound(mailbox=NAME)] == [ids[1]]
