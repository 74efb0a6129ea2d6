"""Relay logins kept after a check (relay/logins.py): the same login within the TTL is
checked in memory, against the stored verifier; a wrong password, an unknown name or an
expired entry is checked against the store — so a new password works at once, and a
reset or removal is honoured once the entry expires (at once with TTL 0)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailoauth.models import Mailbox
from mailoauth.relay import add_user
from mailoauth.relay.logins import Logins
from mailoauth.relay.users import RelayProtocol, reset_password
from mailoauth.secret import Secret
from mailoauth.store import SqlStore
from tests import store_samples as s
from tests.stores import open_sqlite


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """The real store, counting relay-user reads."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store
        self.reads = 0

    def get_relay_user(self, name: str) -> object:
        self.reads += 1
        return self._store.get_relay_user(name)

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    home = tmp_path / "home"
    store = open_sqlite(home)
    store.put_provider(s.generic())
    store.put_mailbox(Mailbox(name="scans", provider="corp", login="scan@corp.example"))
    return store


async def test_a_repeated_login_is_checked_in_memory_until_the_entry_expires(store: SqlStore):
    _, password = add_user(store, "scanner", "scans")
    counting, clock = CountingStore(store), Clock()
    logins = Logins(counting, ttl=5, clock=clock)  # type: ignore[arg-type]
    smtp = RelayProtocol.SMTP
    first = await logins.check("scanner", password, smtp)
    assert first is not None
    assert first[1].login == "scan@corp.example"
    assert await logins.check("scanner", password, smtp) == first
    assert counting.reads == 1
    assert await logins.check("scanner", Secret("wrong"), smtp) is None  # asks the store
    assert counting.reads == 2
    assert await logins.check("scanner", password, RelayProtocol.IMAP) is None  # not allowed
    clock.now += 6
    assert await logins.check("scanner", password, smtp) is not None
    assert counting.reads == 4


async def test_a_new_password_works_at_once_and_the_old_one_stops_after_the_ttl(
    store: SqlStore,
):
    _, old = add_user(store, "scanner", "scans")
    clock = Clock()
    logins = Logins(store, ttl=5, clock=clock)
    smtp = RelayProtocol.SMTP
    assert await logins.check("scanner", old, smtp) is not None
    _, new = reset_password(store, "scanner")
    assert await logins.check("scanner", new, smtp) is not None
    clock.now += 6
    assert await logins.check("scanner", old, smtp) is None
    store.delete_relay_user("scanner")
    clock.now += 6
    assert await logins.check("scanner", new, smtp) is None


async def test_ttl_zero_checks_every_login_against_the_store(store: SqlStore):
    _, old = add_user(store, "scanner", "scans")
    logins = Logins(store, ttl=0, clock=Clock())
    assert await logins.check("scanner", old, RelayProtocol.SMTP) is not None
    reset_password(store, "scanner")
    assert await logins.check("scanner", old, RelayProtocol.SMTP) is None
