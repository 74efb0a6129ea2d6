"""API keys: the shared verifier, the key format, nested scopes, and the store's rows
(a real SQLite store): what is stored is never the key, a revoked key stops working,
``last_used`` is written at most once a minute."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from mailoauth.errors import ConfigError, NotFoundError
from mailoauth.secret import Secret
from mailoauth.store import SqlStore
from mailoauth.store.verifiers import DUMMY_VERIFIER, check_verifier, make_verifier
from mailoauth.web.api.keys import KEY_PATTERN, ApiScope, authenticate, create_key, granted
from tests.stores import open_sqlite


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    home = tmp_path / "home"
    store = open_sqlite(home)
    yield store  # type: ignore[misc]
    store.close()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


# --- the verifier (shared with the relay's logins) --------------------------------------


def test_verifier_is_salted_and_matches_only_its_credential():
    key = Secret("mo_0123abcd_" + "k" * 32)
    one, two = make_verifier(key), make_verifier(key)
    assert one != two
    assert key.reveal() not in one
    assert check_verifier(one, key)
    assert check_verifier(two, key)
    assert not check_verifier(one, Secret(key.reveal()[:-1] + "j"))
    assert not check_verifier("md5$abc$def", key)  # an unknown scheme never matches
    assert not check_verifier("hmac-sha256$!!$??", key)  # a damaged one neither
    assert not check_verifier(DUMMY_VERIFIER, key)


def test_checking_a_key_costs_microseconds():
    verifier, key = make_verifier(Secret("x" * 45)), Secret("x" * 45)
    start = time.perf_counter()
    for _ in range(1000):
        check_verifier(verifier, key)
    assert time.perf_counter() - start < 0.5  # a slow hash would take minutes


# --- scopes ---------------------------------------------------------------------------


def test_scopes_nest_and_unknown_names_grant_nothing():
    assert granted(["read"]) is ApiScope.READ
    assert granted(["read", "admin", "send"]) is ApiScope.ADMIN
    assert granted(["superuser"]) is None
    assert granted([]) is None
    assert ApiScope.ADMIN.rank > ApiScope.SEND.rank > ApiScope.READ.rank


# --- keys in the store ------------------------------------------------------------------


def test_a_new_key_has_the_format_and_only_its_verifier_is_stored(store: SqlStore):
    key, text = create_key(store, "ci", [ApiScope.SEND, ApiScope.SEND])
    match = KEY_PATTERN.fullmatch(text.reveal())
    assert match is not None
    assert match.group(1) == key.prefix
    assert key.scopes == ("send",)
    with store.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM api_keys")).all()
    assert text.reveal() not in repr(rows)
    assert text.reveal().split("_", 2)[2] not in repr(rows)
    assert store.get_api_key("ci").verifier == key.verifier
    assert "verifier" not in repr(key)


def test_authenticate_accepts_the_key_and_refuses_everything_else(store: SqlStore):
    clock = Clock()
    _key, text = create_key(store, "ci", [ApiScope.READ], now=clock)
    found = authenticate(store, text, now=clock)
    assert found is not None
    assert found.name == "ci"
    wrong_secret = Secret(text.reveal()[:-1] + ("A" if text.reveal()[-1] != "A" else "B"))
    for bad in (wrong_secret, Secret("mo_ffffffff_" + "a" * 32), Secret("garbage"), Secret("")):
        assert authenticate(store, bad, now=clock) is None
    store.revoke_api_key("ci", now=clock())
    assert authenticate(store, text, now=clock) is None
    assert store.get_api_key("ci").revoked


def test_last_used_is_written_at_most_once_a_minute(store: SqlStore):
    clock = Clock()
    _, text = create_key(store, "ci", [ApiScope.READ], now=clock)
    assert store.get_api_key("ci").last_used_at is None
    authenticate(store, text, now=clock)
    first = clock.now
    assert store.get_api_key("ci").last_used_at == first
    clock.now += timedelta(seconds=30)
    authenticate(store, text, now=clock)
    assert store.get_api_key("ci").last_used_at == first  # no write for 30 s
    clock.now += timedelta(seconds=31)
    authenticate(store, text, now=clock)
    assert store.get_api_key("ci").last_used_at == clock.now


def test_names_are_checked_unique_and_revoking_keeps_the_row(store: SqlStore):
    with pytest.raises(ConfigError, match="not a valid name"):
        create_key(store, "two words", [ApiScope.READ])
    with pytest.raises(ConfigError, match="--scope"):
        create_key(store, "none", [])
    create_key(store, "ci", [ApiScope.ADMIN])
    with pytest.raises(ConfigError, match="exists already"):
        create_key(store, "ci", [ApiScope.READ])
    first = store.revoke_api_key("ci", now=datetime(2026, 1, 1, tzinfo=UTC))
    again = store.revoke_api_key("ci", now=datetime(2026, 2, 1, tzinfo=UTC))
    assert again.revoked_at == first.revoked_at  # revoked once, as it was
    with pytest.raises(ConfigError, match="a revoked key had it"):
        create_key(store, "ci", [ApiScope.READ])
    assert [k.name for k in store.list_api_keys()] == ["ci"]
    with pytest.raises(NotFoundError, match="api-key list"):
        store.revoke_api_key("nobody", now=datetime.now(UTC))
