"""Authorizations in progress in the store: one-time, the verifier sealed (and re-sealed
by key rotation), expired requests dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mailoauth.config import Settings
from mailoauth.secret import Secret
from mailoauth.store import SqlStore, StoredPending, open_store, rotate_key
from tests import store_samples as s
from tests.stores import sqlite_settings

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path) -> Settings:
    home = tmp_path / "home"
    return sqlite_settings(home)


@pytest.fixture
def store(settings: Settings):
    store = open_store(settings)
    s.store_everything(store)
    yield store
    store.close()


def pending(state_hash: str, *, at: datetime = NOW, mailbox: str = "sales") -> StoredPending:
    return StoredPending(
        state_hash=state_hash,
        mailbox=mailbox,
        code_verifier=Secret("verifier-" + state_hash),
        redirect_uri="https://mail.example.com/oauth/callback",
        scopes=("mail", "offline_access"),
        session_hash="f" * 64,
        initiator="admin alice",
        created_at=at,
        expires_at=at + timedelta(minutes=10),
    )


def test_a_request_is_taken_once_with_its_verifier(store: SqlStore):
    store.add_pending(pending("a" * 64))
    taken = store.take_pending("a" * 64)
    assert taken is not None
    assert taken.code_verifier.reveal() == "verifier-" + "a" * 64
    assert taken.scopes == ("mail", "offline_access")
    assert taken.session_hash == "f" * 64
    assert taken.expires_at == NOW + timedelta(minutes=10)
    assert store.take_pending("a" * 64) is None
    assert store.take_pending("b" * 64) is None


def test_the_verifier_is_sealed_at_rest(store: SqlStore, settings: Settings):
    store.add_pending(pending("a" * 64))
    files = list(settings.data_dir.glob("mailoauth.db*"))  # the database and its WAL
    assert files
    assert any(b"a" * 64 in f.read_bytes() for f in files)  # the row is in these files
    assert not any(b"verifier-" in f.read_bytes() for f in files)


def test_expired_requests_are_dropped_when_a_new_one_starts(store: SqlStore):
    store.add_pending(pending("a" * 64))
    store.add_pending(pending("b" * 64, at=NOW + timedelta(minutes=11)))
    assert store.take_pending("a" * 64) is None
    assert store.take_pending("b" * 64) is not None


def test_key_rotation_reseals_requests_in_progress(store: SqlStore, settings: Settings):
    store.add_pending(pending("a" * 64))
    store.close()
    rotate_key(settings)
    reopened = open_store(settings)
    taken = reopened.take_pending("a" * 64)
    reopened.close()
    assert taken is not None
    assert taken.code_verifier.reveal() == "verifier-" + "a" * 64


def test_requests_go_with_their_mailbox(store: SqlStore):
    store.add_pending(pending("a" * 64))
    store.delete_mailbox("sales")
    assert store.take_pending("a" * 64) is None
