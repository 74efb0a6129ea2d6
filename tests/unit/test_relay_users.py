"""Relay users: generated passwords stored only as salted hashes, checked in constant time,
bound to a mailbox's From addresses; wrong passwords lock an address out for a while."""

from __future__ import annotations

import dataclasses
import hmac
import time

import pytest
import sqlalchemy as sa
from alembic import command

from mailoauth.errors import ConfigError, NotFoundError
from mailoauth.models import OutgoingSettings
from mailoauth.providers import Transport
from mailoauth.relay import (
    FailureLimiter,
    RelayMode,
    RelayProtocol,
    add_user,
    allowed_senders,
    authenticate,
    check_password,
    make_verifier,
    new_password,
    reset_password,
    set_mode,
)
from mailoauth.secret import Secret
from mailoauth.store import open_store
from mailoauth.store.engine import alembic_config, write_transaction
from tests import store_samples as s
from tests.stores import sqlite_settings


@pytest.fixture
def store(tmp_path):
    home = tmp_path / "home"
    settings = sqlite_settings(home)
    store = open_store(settings)
    store.put_provider(s.microsoft())
    store.put_mailbox(s.smtp_imap())  # "sales", address sales@contoso.com
    yield store
    store.close()


# --- passwords and verifiers ----------------------------------------------------------


def test_generated_passwords_are_long_random_and_distinct():
    passwords = {new_password().reveal() for _ in range(50)}
    assert len(passwords) == 50
    assert all(len(p) == 32 for p in passwords)  # 24 random bytes, base64url: 192 bits


def test_the_verifier_holds_no_password_and_differs_per_salt():
    password = Secret("correct horse battery staple")
    one, two = make_verifier(password), make_verifier(password)
    assert one != two  # a per-row salt
    assert password.reveal() not in one
    assert one.startswith("hmac-sha256$")
    assert check_password(one, password)
    assert check_password(two, password)
    assert not check_password(one, Secret("correct horse battery stapl"))
    assert not check_password("md5$abc$def", password)  # an unknown scheme never matches


def test_checking_compares_in_constant_time(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def spy(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr("mailoauth.store.verifiers.hmac.compare_digest", spy)
    verifier = make_verifier(Secret("pw"))
    assert not check_password(verifier, Secret("wrong"))
    assert calls == [(32, 32)]  # digest against digest, never the text itself


def test_checking_is_cheap_enough_for_every_login():
    verifier, password = make_verifier(Secret("x" * 32)), Secret("x" * 32)
    start = time.perf_counter()
    for _ in range(1000):
        check_password(verifier, password)
    assert time.perf_counter() - start < 0.5  # a slow hash would take ~100 s here


# --- relay users in the store ---------------------------------------------------------


def test_add_stores_only_a_hash_and_the_password_logs_in(store):
    user, password = add_user(store, "pbx", "sales")
    assert store.get_relay_user("pbx").verifier == user.verifier
    assert password.reveal() not in repr(store.list_relay_users())
    assert password.reveal() not in user.verifier
    assert authenticate(store, "pbx", password, RelayProtocol.SMTP) == user
    assert authenticate(store, "pbx", Secret("wrong"), RelayProtocol.SMTP) is None
    assert authenticate(store, "nobody", password, RelayProtocol.SMTP) is None


def test_a_login_works_only_for_its_protocols(store):
    _, password = add_user(store, "printer", "sales", protocols=[RelayProtocol.SMTP])
    assert authenticate(store, "printer", password, RelayProtocol.IMAP) is None
    _, both = add_user(store, "bi", "sales", protocols=[RelayProtocol.IMAP, RelayProtocol.SMTP])
    assert authenticate(store, "bi", both, RelayProtocol.IMAP) is not None


def test_allowed_from_defaults_to_the_mailbox_addresses(store):
    user, _ = add_user(store, "pbx", "sales")
    assert allowed_senders(store, user) == ("sales@contoso.com",)


def test_allowed_from_must_be_an_address_the_mailbox_can_send_as(store):
    with pytest.raises(ConfigError, match="not one of mailbox 'sales'"):
        add_user(store, "pbx", "sales", allow_from=["boss@contoso.com"])
    user, _ = add_user(store, "pbx", "sales", allow_from=["Sales@Contoso.com"])
    assert allowed_senders(store, user) == ("Sales@Contoso.com",)


def test_names_are_unique_and_checked(store):
    add_user(store, "pbx", "sales")
    with pytest.raises(ConfigError, match="exists already"):
        add_user(store, "pbx", "sales")
    with pytest.raises(ConfigError, match="not a usable login name"):
        add_user(store, "bad name", "sales")
    with pytest.raises(NotFoundError, match="mailbox 'nope'"):
        add_user(store, "other", "nope")


def test_reset_password_retires_the_old_one(store):
    _, old = add_user(store, "pbx", "sales")
    _, new = reset_password(store, "pbx")
    assert authenticate(store, "pbx", old, RelayProtocol.SMTP) is None
    assert authenticate(store, "pbx", new, RelayProtocol.SMTP) is not None


def test_removing_the_user_or_its_mailbox_removes_the_login(store):
    add_user(store, "pbx", "sales")
    add_user(store, "fax", "sales")
    store.delete_relay_user("pbx")
    with pytest.raises(NotFoundError, match="relay-user 'pbx'"):
        store.delete_relay_user("pbx")
    store.delete_mailbox("sales")
    assert store.list_relay_users() == []


# --- lockout after failures -----------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ten_failures_in_five_minutes_lock_the_address_for_five_minutes():
    clock = Clock()
    limiter = FailureLimiter(clock=clock)
    for _ in range(9):
        assert limiter.failure("10.0.0.1") == 0
        clock.now += 1
    assert limiter.failure("10.0.0.1") == 300
    assert limiter.retry_after("10.0.0.1") == 300
    assert limiter.retry_after("10.0.0.2") == 0  # other addresses are not affected
    clock.now += 299.5
    assert limiter.retry_after("10.0.0.1") == 1
    clock.now += 0.5
    assert limiter.retry_after("10.0.0.1") == 0


def test_failures_older_than_the_window_do_not_count():
    clock = Clock()
    limiter = FailureLimiter(clock=clock)
    for _ in range(9):
        limiter.failure("10.0.0.1")
    clock.now += 301
    assert limiter.failure("10.0.0.1") == 0


def test_a_good_login_starts_the_count_again():
    limiter = FailureLimiter(clock=Clock())
    for _ in range(9):
        limiter.failure("10.0.0.1")
    limiter.success("10.0.0.1")
    assert limiter.failure("10.0.0.1") == 0


def test_memory_is_bounded_by_the_number_of_addresses_tracked():
    limiter = FailureLimiter(max_failures=1, max_addresses=2, clock=Clock())
    for address in ("a", "b", "c"):
        limiter.failure(address)
    assert limiter.retry_after("a") == 0  # forgotten
    assert limiter.retry_after("c") == 300


# --- modes ------------------------------------------------------------------------------


def test_the_mode_is_queue_unless_asked_and_can_be_switched(store):
    add_user(store, "pbx", "sales")
    add_user(store, "scanner", "sales", mode=RelayMode.PASSTHROUGH)
    assert {u.name: u.mode for u in store.list_relay_users()} == {
        "pbx": RelayMode.QUEUE,
        "scanner": RelayMode.PASSTHROUGH,
    }
    assert set_mode(store, "pbx", RelayMode.PASSTHROUGH).mode is RelayMode.PASSTHROUGH
    assert store.get_relay_user("pbx").mode is RelayMode.PASSTHROUGH
    with pytest.raises(NotFoundError):
        set_mode(store, "nobody", RelayMode.QUEUE)


def test_passthrough_needs_a_mailbox_that_sends_over_smtp(store):
    graph = dataclasses.replace(
        s.smtp_imap(),
        name="orders",
        outgoing=OutgoingSettings(transport=Transport.GRAPH),
        incoming=None,
    )
    store.put_mailbox(graph)
    with pytest.raises(ConfigError) as refused:
        add_user(store, "bi", "orders", mode=RelayMode.PASSTHROUGH)
    assert str(refused.value) == (
        "--mode: passthrough relays SMTP live, and mailbox 'orders' sends over graph; use "
        "--mode queue (the queue delivers over every transport), or give the mailbox an SMTP "
        "outgoing transport"
    )
    add_user(store, "bi", "orders")  # queue mode delivers over Graph
    with pytest.raises(ConfigError):
        set_mode(store, "bi", RelayMode.PASSTHROUGH)
    assert store.get_relay_user("bi").mode is RelayMode.QUEUE


def test_logins_made_before_modes_existed_become_queue_logins(store):
    """Migration 0005 on a database with relay users (at 0004 they had no mode)."""
    add_user(store, "pbx", "sales", mode=RelayMode.PASSTHROUGH)
    with write_transaction(store.engine) as conn:
        command.downgrade(alembic_config(conn), "0004")
        assert "mode" not in {c["name"] for c in sa.inspect(conn).get_columns("relay_users")}
    with write_transaction(store.engine) as conn:
        command.upgrade(alembic_config(conn), "head")
    assert store.get_relay_user("pbx").mode is RelayMode.QUEUE
