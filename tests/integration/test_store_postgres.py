"""The store on a real PostgreSQL: the same behaviour as on SQLite, secrets sealed."""

import dataclasses
import threading

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from mailoauth.config import Settings
from mailoauth.errors import InUseError, SecretKeyError
from mailoauth.secret import Secret
from mailoauth.store import Change, open_store, rotate_key
from mailoauth.store.crypto import SecretKey
from mailoauth.store.schema import metadata
from tests import store_samples as s

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(tmp_path, postgres_url):
    return Settings(
        data_dir=tmp_path / "home",
        database_url=postgres_url,
        key_file=tmp_path / "home" / "secret.key",
    )


@pytest.fixture
def store(settings):
    store = open_store(settings)
    yield store
    store.close()


def raw_rows(postgres_url):
    with psycopg.connect(postgres_url) as conn:
        return [
            row
            for table in ("meta", "providers", "mailboxes", "grants")
            for row in conn.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608
        ]


def test_schema_matches_the_code(store):
    assert store.engine.dialect.driver == "psycopg"
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []


def test_crud_round_trips(store):
    for provider in s.all_providers():
        assert store.put_provider(provider) is Change.CREATED
    for mailbox in s.all_mailboxes():
        assert store.put_mailbox(mailbox) is Change.CREATED
    store.put_grant(s.grant())
    assert store.list_providers() == sorted(s.all_providers(), key=lambda p: p.name)
    assert store.get_mailbox("ops") == s.service_account()
    assert store.get_grant("sales") == s.grant()
    assert store.get_grant("sales").expires_at == s.grant().expires_at
    with pytest.raises(InUseError):
        store.delete_provider("corp")
    store.delete_mailbox("legacy")
    store.delete_provider("corp")
    assert store.delete_grant("sales") is True
    assert store.get_grant("sales") is None


def test_apply_idempotent_prune_and_dry_run(store):
    assert {r.change for r in store.apply(s.all_providers(), s.all_mailboxes())} == {Change.CREATED}
    assert {r.change for r in store.apply(s.all_providers(), s.all_mailboxes())} == {
        Change.UNCHANGED
    }
    dry = store.apply([s.microsoft()], [s.smtp_imap()], prune=True, dry_run=True)
    assert sum(r.change is Change.REMOVED for r in dry) == 5
    assert len(store.list_mailboxes()) == 3
    store.apply([s.microsoft()], [s.smtp_imap()], prune=True)
    assert [m.name for m in store.list_mailboxes()] == ["sales"]


def test_secrets_are_not_in_clear_text(store, postgres_url):
    s.store_everything(store)
    dump = repr(raw_rows(postgres_url))
    assert s.PUBLIC_CLIENT_ID in dump  # the search sees the stored rows
    for value in s.secret_values():
        assert value not in dump
    with psycopg.connect(postgres_url) as conn:
        blobs = conn.execute("SELECT secrets FROM providers").fetchall()
    for (blob,) in blobs:
        assert s.CLIENT_SECRET.encode() not in bytes(blob)
        assert bytes(blob)[0] == 0x01


def test_rotate_key_file(store, settings):
    s.store_everything(store)
    store.close()
    new, count = rotate_key(settings)
    assert count == 7
    reopened = open_store(settings)
    assert reopened.key_id == new.key_id
    assert reopened.get_grant("sales") == s.grant()
    reopened.close()


def test_rotate_environment_key_across_nodes(settings):
    old, new = SecretKey.generate(), SecretKey.generate()
    node_a = dataclasses.replace(settings, secret_key=Secret(old.encode()))
    store = open_store(node_a)
    s.store_everything(store)
    assert rotate_key(node_a, new) == (new, 7)
    with pytest.raises(SecretKeyError, match=new.key_id):
        store.get_provider("google-main")  # a node still on the old key is told why
    store.close()
    node_b = dataclasses.replace(settings, secret_key=Secret(new.encode()))
    store = open_store(node_b)
    assert store.get_mailbox("legacy") == s.password_grant()
    store.close()


def test_nodes_starting_at_once_migrate_once_and_agree_on_the_key(settings):
    barrier = threading.Barrier(4)
    stores, errors = [], []

    def start():
        barrier.wait()
        try:
            stores.append(open_store(settings))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for st in stores:
        st.close()
    assert errors == []
    assert len({st.key_id for st in stores}) == 1


def test_refresh_leases_exclude_other_nodes(settings):
    """Two nodes (two stores on one database) race for the same mailbox's lease."""
    from datetime import UTC, datetime, timedelta

    first = open_store(settings)
    second = open_store(settings)
    try:
        first.apply(s.all_providers(), s.all_mailboxes())
        now = datetime.now(UTC)
        ttl = timedelta(seconds=60)
        won: list[bool] = []
        threads = [
            threading.Thread(
                target=lambda store=store, owner=owner: won.append(
                    store.claim_refresh("sales", owner, now=now, ttl=ttl)
                )
            )
            for store, owner in ((first, "node-a"), (second, "node-b")) * 5
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        holders = {
            o for o in ("node-a", "node-b") if first.claim_refresh("sales", o, now=now, ttl=ttl)
        }
        assert len(holders) == 1  # exactly one node holds it; the holder may renew
        first.release_refresh("sales", holders.pop())
        assert second.claim_refresh("sales", "node-b", now=now, ttl=ttl)
    finally:
        first.close()
        second.close()


def test_outbound_claims_never_overlap_across_nodes(settings):
    """Two nodes drain one queue at once: every message is leased to exactly one of them."""
    from datetime import UTC, datetime, timedelta

    from mailoauth.store import NewMessage

    first = open_store(settings)
    second = open_store(settings)
    try:
        first.apply(s.all_providers(), s.all_mailboxes())
        now = datetime.now(UTC)
        for i in range(40):
            data = f"Message-ID: <{i}@x>\r\nSubject: n{i}\r\n\r\nbody\r\n".encode()
            message = NewMessage(f"<{i}@x>", "sales@contoso.com", ("b@example.com",), "n", data)
            first.queue_message("sales", message, now=now)
        claimed: dict[str, list[int]] = {"node-a": [], "node-b": []}

        def drain(store, owner: str) -> None:
            while batch := store.claim_outbound(owner, now=now, ttl=timedelta(minutes=10), limit=3):
                claimed[owner] += [entry.id for entry, _ in batch]

        threads = [
            threading.Thread(target=drain, args=(store, owner))
            for store, owner in ((first, "node-a"), (second, "node-b"))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        everything = claimed["node-a"] + claimed["node-b"]
        assert len(everything) == 40
        assert len(set(everything)) == 40  # no message leased twice
    finally:
        first.close()
        second.close()
