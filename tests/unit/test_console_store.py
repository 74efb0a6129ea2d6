"""The console's rows in the store: admins, sessions, the audit log, the queue per mailbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailoauth.errors import ConfigError, InUseError, NotFoundError
from mailoauth.store import Admin, AuditEntry, NewMessage, QueueStatus, WebSession, open_store
from tests import store_samples as s
from tests.stores import sqlite_settings

T0 = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path):
    home = tmp_path / "home"
    settings = sqlite_settings(home)
    store = open_store(settings)
    yield store
    store.close()


def admin(name: str = "alice") -> Admin:
    return Admin(name, f"scrypt$n=2,r=1,p=1$salt-{name}$key", created_at=T0, password_set_at=T0)


def session(id_hash: str, who: str = "alice", *, at: datetime = T0) -> WebSession:
    return WebSession(
        id_hash=id_hash,
        admin=who,
        csrf_secret=f"csrf-{id_hash}",
        created_at=at,
        last_seen_at=at,
        expires_at=at + timedelta(days=7),
    )


def test_admins_are_stored_listed_and_counted(store):
    assert store.count_admins() == 0
    store.add_admin(admin("bob"))
    store.add_admin(admin("alice"))
    assert [a.name for a in store.list_admins()] == ["alice", "bob"]
    assert store.count_admins() == 2
    assert store.get_admin("alice") == admin("alice")
    assert "salt-alice" not in repr(store.get_admin("alice"))  # the hash stays out of logs


def test_a_taken_name_and_an_unknown_name_say_what_to_do(store):
    store.add_admin(admin())
    with pytest.raises(ConfigError, match="'alice' exists already; pick another name"):
        store.add_admin(admin())
    with pytest.raises(NotFoundError, match="mailoauth admin list"):
        store.get_admin("mallory")


def test_the_first_admin_is_created_only_while_none_exists(store):
    store.add_admin(admin("alice"), first=True)
    with pytest.raises(InUseError, match="setup link no longer works"):
        store.add_admin(admin("bob"), first=True)
    assert store.count_admins() == 1


def test_a_new_password_ends_every_session_of_that_admin_only(store):
    store.add_admin(admin("alice"))
    store.add_admin(admin("bob"))
    for id_hash, who in [("a1", "alice"), ("a2", "alice"), ("b1", "bob")]:
        store.add_web_session(session(id_hash, who))
    assert store.set_admin_password("alice", "scrypt$new", now=T0 + timedelta(hours=1)) == 2
    assert store.get_web_session("a1") is None
    assert store.get_web_session("a2") is None
    assert store.get_web_session("b1") is not None
    changed = store.get_admin("alice")
    assert changed.password_hash == "scrypt$new"
    assert changed.password_set_at == T0 + timedelta(hours=1)


def test_removing_an_admin_ends_its_sessions_and_keeps_its_audit_entries(store):
    store.add_admin(admin())
    store.add_web_session(session("a1"))
    store.add_audit(AuditEntry(T0, "login", admin="alice", target="alice", source="192.0.2.1"))
    store.delete_admin("alice")
    assert store.get_web_session("a1") is None
    assert [e.admin for e in store.list_audit()] == ["alice"]
    with pytest.raises(NotFoundError):
        store.delete_admin("alice")


def test_a_session_is_found_by_its_hash_touched_and_deleted(store):
    store.add_admin(admin())
    store.add_web_session(session("h1"))
    assert store.get_admin("alice").last_login_at == T0
    found = store.get_web_session("h1")
    assert found == session("h1")
    store.touch_web_session("h1", now=T0 + timedelta(minutes=5))
    assert store.get_web_session("h1").last_seen_at == T0 + timedelta(minutes=5)
    assert store.delete_web_session("h1") is True
    assert store.delete_web_session("h1") is False
    assert store.get_web_session("h1") is None


def test_pruning_removes_idle_and_ended_sessions_only(store):
    store.add_admin(admin())
    now = T0 + timedelta(days=8)
    store.add_web_session(session("ended", at=T0))  # past its 7 days
    store.add_web_session(session("idle", at=now - timedelta(hours=13)))
    store.add_web_session(session("live", at=now - timedelta(hours=1)))
    assert store.prune_web_sessions(now=now, idle_since=now - timedelta(hours=12)) == 2
    assert store.get_web_session("live") is not None


def test_the_audit_log_reads_newest_first_in_pages(store):
    for i in range(5):
        store.add_audit(AuditEntry(T0 + timedelta(minutes=i), f"action.{i}", detail=f"d{i}"))
    page = store.list_audit(limit=2)
    assert [e.action for e in page] == ["action.4", "action.3"]
    older = store.list_audit(limit=2, before=page[-1].id)
    assert [e.action for e in older] == ["action.2", "action.1"]
    assert older[0].at == T0 + timedelta(minutes=2)
    assert older[0].admin is None
    assert older[0].detail == "d2"


def test_the_queue_per_mailbox_counts_waiting_and_failed_and_the_last_send(store):
    store.put_provider(s.microsoft())
    store.put_mailbox(s.smtp_imap())  # "sales"
    ids = []
    for i in range(3):
        message = NewMessage(f"<{i}@x>", "sales@contoso.com", ("b@example.com",), "s", b"x")
        ids.append(store.queue_message("sales", message, now=T0).id)
    claimed = store.claim_outbound("me", now=T0, ttl=timedelta(minutes=1), limit=2)
    sent_at = T0 + timedelta(seconds=5)
    store.settle_outbound(claimed[0][0].id, "me", QueueStatus.SENT, now=sent_at)
    store.settle_outbound(claimed[1][0].id, "me", QueueStatus.FAILED, now=sent_at, error="550")
    summary = store.outbound_by_mailbox()
    assert summary["sales"].waiting == 1
    assert summary["sales"].failed == 1
    assert summary["sales"].last_sent_at == sent_at
    assert summary["sales"].last_sent_at.tzinfo is not None
