"""The SQLite store: round trips, change reports, all-or-nothing apply, and the key."""

import dataclasses
import sqlite3
import threading
from datetime import UTC

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext

from mailoauth.errors import ConfigError, InUseError, NotFoundError, SecretKeyError, StoreError
from mailoauth.models import Grant, GrantStatus, Mailbox
from mailoauth.providers import GrantType
from mailoauth.secret import Secret
from mailoauth.store import Change, ChangeReport, SqlStore, open_store, rotate_key
from mailoauth.store.crypto import SecretKey
from mailoauth.store.engine import alembic_config, write_transaction
from mailoauth.store.keys import pending_key_path, read_key_file, write_pending_key
from mailoauth.store.schema import metadata
from tests import store_samples as s
from tests.stores import sqlite_settings


@pytest.fixture
def settings(tmp_path):
    home = tmp_path / "home"
    return sqlite_settings(home)


@pytest.fixture
def store(settings):
    store = open_store(settings)
    yield store
    store.close()


def with_env_key(settings, key):
    return dataclasses.replace(settings, secret_key=Secret(key.encode()))


def raw_db(settings):
    return sqlite3.connect(settings.data_dir / "mailoauth.db", isolation_level=None)


# --- schema -------------------------------------------------------------------------


def test_new_database_has_the_schema_the_code_expects(store):
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert set(sa.inspect(conn).get_table_names()) >= {
            "meta",
            "providers",
            "mailboxes",
            "grants",
            "alembic_version",
        }


def test_migrations_go_down_and_up_again(store, settings):
    with write_transaction(store.engine) as conn:
        command.downgrade(alembic_config(conn), "base")
        assert sa.inspect(conn).get_table_names() == ["alembic_version"]
    store.close()
    reopened = open_store(settings)
    assert reopened.list_providers() == []
    reopened.close()


def test_database_and_directory_are_private(store, settings):
    assert (settings.data_dir / "mailoauth.db").stat().st_mode & 0o077 == 0
    assert settings.data_dir.stat().st_mode & 0o077 == 0


def test_connections_use_wal_and_foreign_keys(store):
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10000


# --- round trips --------------------------------------------------------------------


@pytest.mark.parametrize("make", [s.google, s.microsoft, s.generic, s.private_key_jwt])
def test_provider_round_trip(store, make):
    provider = make()
    assert store.put_provider(provider) is Change.CREATED
    assert store.get_provider(provider.name) == provider
    assert store.list_providers() == [provider]
    assert store.put_provider(make()) is Change.UNCHANGED
    changed = dataclasses.replace(provider, description="changed")
    assert store.put_provider(changed) is Change.UPDATED
    assert store.get_provider(provider.name) == changed


def test_changing_only_a_secret_is_an_update(store):
    store.put_provider(s.google())
    rotated = dataclasses.replace(s.google(), client_secret=Secret("new-secret"))
    assert store.put_provider(rotated) is Change.UPDATED
    assert store.get_provider("google-main").client_secret == Secret("new-secret")


@pytest.mark.parametrize("make", [s.smtp_imap, s.password_grant, s.service_account])
def test_mailbox_round_trip(store, make):
    for provider in s.all_providers():
        store.put_provider(provider)
    mailbox = make()
    assert store.put_mailbox(mailbox) is Change.CREATED
    assert store.get_mailbox(mailbox.name) == mailbox
    assert store.put_mailbox(make()) is Change.UNCHANGED
    assert store.list_mailboxes(provider=mailbox.provider) == [mailbox]
    assert store.list_mailboxes(provider="corp" if mailbox.provider != "corp" else "contoso") == []


def test_lists_are_sorted_by_name(store):
    store.apply(s.all_providers(), s.all_mailboxes())
    assert [p.name for p in store.list_providers()] == sorted(p.name for p in s.all_providers())
    assert [m.name for m in store.list_mailboxes()] == ["legacy", "ops", "sales"]


def test_grant_round_trip_keeps_times_as_utc_instants(store):
    store.apply([s.microsoft()], [s.smtp_imap()])
    assert store.get_grant("sales") is None
    grant = s.grant()
    store.put_grant(grant)
    loaded = store.get_grant("sales")
    assert loaded == grant
    assert loaded.expires_at.tzinfo is UTC
    assert loaded.expires_at.utcoffset().total_seconds() == 0
    assert loaded.expires_at.microsecond == 123456

    failed = dataclasses.replace(grant, status=GrantStatus.NEEDS_AUTHORIZATION, access_token=None)
    store.put_grant(failed)
    assert store.get_grant("sales") == failed
    assert store.delete_grant("sales") is True
    assert store.delete_grant("sales") is False
    assert store.get_grant("sales") is None


def test_grant_updates_bump_the_version(store, settings):
    store.apply([s.microsoft()], [s.smtp_imap()])
    store.put_grant(s.grant())
    store.put_grant(s.grant())
    with raw_db(settings) as conn:
        assert conn.execute("SELECT version FROM grants").fetchall() == [(2,)]


def test_grant_of_an_unknown_mailbox(store):
    with pytest.raises(NotFoundError, match="mailbox 'nobody' does not exist"):
        store.put_grant(Grant(mailbox="nobody"))
    with pytest.raises(NotFoundError):
        store.get_grant("nobody")


def test_unknown_names_say_how_to_find_the_right_one(store):
    with pytest.raises(NotFoundError, match=r"provider 'nope' does not exist; see `mailoauth"):
        store.get_provider("nope")
    with pytest.raises(NotFoundError, match="mailbox 'nope' does not exist"):
        store.get_mailbox("nope")
    with pytest.raises(NotFoundError):
        store.delete_mailbox("nope")
    with pytest.raises(NotFoundError):
        store.delete_provider("nope")
    with pytest.raises(NotFoundError):
        store.list_mailboxes(provider="nope")


# --- cross-object rules -------------------------------------------------------------


def test_mailbox_needs_an_existing_provider(store):
    with pytest.raises(ConfigError) as info:
        store.put_mailbox(s.smtp_imap())
    assert info.value.field == "provider"
    assert "provider 'contoso' does not exist" in str(info.value)
    assert "mailoauth provider add" in str(info.value)


def test_mailbox_must_fit_its_provider(store):
    store.put_provider(s.google())
    wrong = Mailbox(
        name="gpw",
        provider="google-main",
        login="a@example.com",
        grant=GrantType.PASSWORD,
        password=Secret("x"),
    )
    with pytest.raises(ConfigError) as info:
        store.put_mailbox(wrong)
    assert info.value.field == "grant"
    assert store.list_mailboxes() == []


def test_provider_in_use_cannot_be_deleted(store):
    store.apply(s.all_providers(), s.all_mailboxes())
    with pytest.raises(InUseError) as info:
        store.delete_provider("contoso")
    assert "sales" in str(info.value)
    assert "remove these mailboxes or move them" in str(info.value)
    store.delete_mailbox("sales")
    store.delete_provider("contoso")
    assert "contoso" not in [p.name for p in store.list_providers()]


def test_deleting_a_mailbox_deletes_its_grant(store, settings):
    store.apply([s.microsoft()], [s.smtp_imap()])
    store.put_grant(s.grant())
    store.delete_mailbox("sales")
    with raw_db(settings) as conn:
        assert conn.execute("SELECT count(*) FROM grants").fetchone() == (0,)


def helpdesk() -> Mailbox:
    return Mailbox(name="helpdesk", provider="corp", login="helpdesk@example.com")


def test_provider_change_that_breaks_a_mailbox_is_refused_naming_it(store):
    store.apply([s.generic()], [helpdesk()])
    no_authorize = dataclasses.replace(s.generic(), authorization_url=None)
    with pytest.raises(ConfigError) as info:
        store.put_provider(no_authorize)
    assert info.value.field == "mailboxes.helpdesk.grant"
    assert store.get_provider("corp") == s.generic()  # nothing written


# --- apply --------------------------------------------------------------------------


def test_apply_reports_and_is_idempotent(store):
    first = store.apply(s.all_providers(), s.all_mailboxes())
    assert [r.change for r in first] == [Change.CREATED] * 7
    assert first[0] == ChangeReport("provider", "google-main", Change.CREATED)
    assert [r.kind for r in first] == ["provider"] * 4 + ["mailbox"] * 3
    second = store.apply(s.all_providers(), s.all_mailboxes())
    assert [r.change for r in second] == [Change.UNCHANGED] * 7


def test_apply_prune_removes_what_the_batch_does_not_name(store):
    store.apply(s.all_providers(), s.all_mailboxes())
    store.put_grant(s.grant("legacy"))
    reports = store.apply([s.microsoft()], [s.smtp_imap()], prune=True)
    removed = {(r.kind, r.name) for r in reports if r.change is Change.REMOVED}
    assert removed == {
        ("mailbox", "legacy"),
        ("mailbox", "ops"),
        ("provider", "google-main"),
        ("provider", "corp"),
        ("provider", "contoso-cert"),
    }
    assert [p.name for p in store.list_providers()] == ["contoso"]
    assert [m.name for m in store.list_mailboxes()] == ["sales"]


def test_apply_dry_run_reports_and_writes_nothing(store):
    reports = store.apply(s.all_providers(), s.all_mailboxes(), dry_run=True)
    assert [r.change for r in reports] == [Change.CREATED] * 7
    assert store.list_providers() == []
    assert store.list_mailboxes() == []


def test_apply_is_all_or_nothing(store):
    bad = Mailbox(name="zz-bad", provider="missing", login="bad@example.com")
    with pytest.raises(ConfigError) as info:
        store.apply(s.all_providers(), [*s.all_mailboxes(), bad])
    assert info.value.field == "mailboxes.zz-bad.provider"
    assert store.list_providers() == []
    assert store.list_mailboxes() == []


def test_apply_checks_stored_mailboxes_against_changed_providers(store):
    store.apply([s.generic()], [helpdesk()])
    no_authorize = dataclasses.replace(s.generic(), authorization_url=None)
    with pytest.raises(ConfigError) as info:
        store.apply([no_authorize], [])
    assert info.value.field == "mailboxes.helpdesk.grant"
    # the same change is fine when the batch moves the mailbox to a grant that fits
    moved = dataclasses.replace(helpdesk(), grant=GrantType.PASSWORD, password=Secret("pw"))
    reports = store.apply([no_authorize], [moved])
    assert [r.change for r in reports] == [Change.UPDATED, Change.UPDATED]


def test_apply_refuses_a_name_given_twice(store):
    with pytest.raises(ConfigError) as info:
        store.apply([s.google(), s.google()], [])
    assert info.value.field == "providers.google-main"


def test_apply_prune_keeps_a_provider_a_batch_mailbox_uses(store):
    store.apply(s.all_providers(), s.all_mailboxes())
    kept = s.smtp_imap()
    reports = store.apply([], [kept], prune=True)
    removed = {(r.kind, r.name) for r in reports if r.change is Change.REMOVED}
    assert ("provider", kept.provider) not in removed
    assert [p.name for p in store.list_providers()] == [kept.provider]
    assert [m.name for m in store.list_mailboxes()] == [kept.name]


# --- secrets at rest ----------------------------------------------------------------


def sqlite_files(settings):
    db = settings.data_dir / "mailoauth.db"
    return [p for p in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"))]


def test_no_secret_is_in_the_database_files(store, settings):
    s.store_everything(store)
    key_text = read_key_file(settings.key_file).encode()

    def raw_bytes():
        return b"".join(p.read_bytes() for p in sqlite_files(settings) if p.exists())

    for moment in ("open", "closed"):
        if moment == "closed":
            store.close()
        data = raw_bytes()
        assert s.PUBLIC_CLIENT_ID.encode() in data  # the search works on these bytes
        for value in [*s.secret_values(), key_text]:
            assert value.encode() not in data, f"{value[:8]}… readable while {moment}"


def test_blob_copied_to_another_row_is_refused(store, settings):
    store.apply(s.all_providers(), s.all_mailboxes())
    with raw_db(settings) as conn:
        conn.execute(
            "UPDATE mailboxes SET secrets = (SELECT secrets FROM mailboxes WHERE name='legacy') "
            "WHERE name = 'ops'"
        )
    with pytest.raises(SecretKeyError, match="mailboxes:ops is damaged or was tampered with"):
        store.get_mailbox("ops")
    assert store.get_mailbox("legacy") == s.password_grant()


def test_tampered_blob_is_refused(store, settings):
    store.put_provider(s.google())
    with raw_db(settings) as conn:
        (blob,) = conn.execute("SELECT secrets FROM providers").fetchone()
        tampered = blob[:-1] + bytes([blob[-1] ^ 1])
        conn.execute("UPDATE providers SET secrets = ?", (tampered,))
    with pytest.raises(SecretKeyError, match="providers:google-main is damaged"):
        store.get_provider("google-main")


# --- the key ------------------------------------------------------------------------


def test_wrong_key_is_refused_when_opening(store, settings):
    s.store_everything(store)
    right = store.key_id
    store.close()
    other = SecretKey.generate()
    with pytest.raises(SecretKeyError) as info:
        open_store(with_env_key(settings, other))
    assert right in str(info.value)
    assert other.key_id in str(info.value)


def test_deleted_key_file_is_not_replaced(store, settings):
    s.store_everything(store)
    store.close()
    settings.key_file.unlink()
    with pytest.raises(SecretKeyError) as info:
        open_store(settings)
    assert f"the key file {settings.key_file} is missing" in str(info.value)
    assert not settings.key_file.exists()


def test_rotate_key_file(store, settings):
    s.store_everything(store)
    store.close()
    old = read_key_file(settings.key_file)
    new, count = rotate_key(settings)
    assert count == 7  # 4 providers + 2 mailboxes with secrets + 1 grant
    assert read_key_file(settings.key_file) == new != old
    assert not pending_key_path(settings.key_file).exists()
    reopened = open_store(settings)
    assert reopened.get_mailbox("ops") == s.service_account()
    assert reopened.get_grant("sales") == s.grant()
    reopened.close()
    with pytest.raises(SecretKeyError, match=old.key_id):
        open_store(with_env_key(settings, old))


def test_rotate_environment_key(settings):
    old = SecretKey.generate()
    env_settings = with_env_key(settings, old)
    store = open_store(env_settings)
    s.store_everything(store)
    store.close()
    with pytest.raises(SecretKeyError, match="MAILOAUTH_NEW_SECRET_KEY"):
        rotate_key(env_settings)
    new = SecretKey.generate()
    assert rotate_key(env_settings, new) == (new, 7)
    assert not settings.key_file.exists()
    with pytest.raises(SecretKeyError):
        open_store(env_settings)
    store = open_store(with_env_key(settings, new))
    assert store.get_provider("contoso") == s.microsoft()
    store.close()


def test_interrupted_rotation_is_finished_on_next_open(store, settings):
    s.store_everything(store)
    new = SecretKey.generate()
    # the crash: .new written and the database committed, but the file not yet replaced
    store.rotate_key(new, before_commit=lambda: write_pending_key(settings.key_file, new))
    store.close()
    reopened = open_store(settings)
    assert reopened.key_id == new.key_id
    assert reopened.get_grant("sales") == s.grant()
    assert read_key_file(settings.key_file) == new
    assert not pending_key_path(settings.key_file).exists()
    reopened.close()


def test_rotation_that_did_not_commit_leaves_the_old_key(store, settings):
    s.store_everything(store)
    old = store.key_id

    def crash():
        write_pending_key(settings.key_file, SecretKey.generate())
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.rotate_key(SecretKey.generate(), before_commit=crash)
    store.close()
    reopened = open_store(settings)
    assert reopened.key_id == old
    assert reopened.get_provider("google-main") == s.google()
    reopened.close()


def test_running_store_follows_a_rotation_by_another_process(store, settings):
    s.store_everything(store)
    new, _ = rotate_key(settings)  # e.g. `mailoauth rotate-key` while the service runs
    assert store.get_grant("sales") == s.grant()
    store.put_grant(dataclasses.replace(s.grant(), last_error="x"))
    assert store.key_id == new.key_id
    store.close()
    reopened = open_store(settings)
    assert reopened.get_grant("sales").last_error == "x"
    reopened.close()


def test_rotating_to_the_same_key_is_refused(store, settings):
    with pytest.raises(SecretKeyError, match="the new key is the current key"):
        store.rotate_key(read_key_file(settings.key_file))


# --- opening ------------------------------------------------------------------------


def test_unsupported_database_url(settings):
    bad = dataclasses.replace(settings, database_url="mysql://root:pw@localhost/x")
    with pytest.raises(StoreError, match="only SQLite and PostgreSQL") as info:
        open_store(bad)
    assert ":pw@" not in str(info.value)


def test_unusable_database_path(tmp_path, settings):
    blocker = tmp_path / "file"
    blocker.write_text("")
    bad = dataclasses.replace(settings, database_url=f"sqlite:///{blocker}/sub/x.db")
    with pytest.raises(StoreError, match="cannot create the database"):
        open_store(bad)


def test_unreachable_postgres_names_the_url_without_password(settings):
    bad = dataclasses.replace(
        settings, database_url="postgresql://mailoauth:hunter2pw@127.0.0.1:1/mailoauth"
    )
    with pytest.raises(StoreError) as info:
        open_store(bad)
    message = str(info.value)
    assert "hunter2pw" not in message
    assert "postgresql+psycopg://mailoauth:***@127.0.0.1:1/mailoauth" in message
    assert "cannot open the database" in message


def test_open_does_not_need_a_key_file_when_the_environment_has_the_key(settings):
    store = open_store(with_env_key(settings, SecretKey.generate()), create_key=False)
    store.close()
    assert not settings.key_file.exists()


def test_two_writers_on_one_database_queue_up(store, settings):
    store.apply([s.microsoft()], [s.smtp_imap()])
    other = open_store(settings)
    errors = []

    def refresh(target: SqlStore):
        try:
            for _ in range(15):
                target.put_grant(s.grant())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=refresh, args=(t,)) for t in (store, other, store)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.close()
    assert errors == []
    with raw_db(settings) as conn:
        assert conn.execute("SELECT version FROM grants").fetchone() == (45,)


def test_head_revision_constant_matches_the_migrations():
    from alembic.script import ScriptDirectory

    from mailoauth.store.engine import MIGRATIONS
    from mailoauth.store.migrations import HEAD_REVISION

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == HEAD_REVISION


def test_refresh_lease_is_exclusive_until_released_or_expired(store):
    from datetime import datetime, timedelta

    store.apply(s.all_providers(), s.all_mailboxes())
    now = datetime(2030, 1, 1, tzinfo=UTC)
    ttl = timedelta(seconds=60)
    assert store.claim_refresh("sales", "node-a", now=now, ttl=ttl)
    assert not store.claim_refresh("sales", "node-b", now=now + timedelta(seconds=30), ttl=ttl)
    assert store.claim_refresh("sales", "node-a", now=now + timedelta(seconds=30), ttl=ttl)
    assert store.claim_refresh("sales", "node-b", now=now + timedelta(seconds=91), ttl=ttl)
    store.release_refresh("sales", "node-a")  # not the holder any more: no effect
    assert not store.claim_refresh("sales", "node-a", now=now + timedelta(seconds=92), ttl=ttl)
    store.release_refresh("sales", "node-b")
    assert store.claim_refresh("sales", "node-a", now=now + timedelta(seconds=92), ttl=ttl)
    store.delete_mailbox("sales")  # the lease goes with its mailbox
