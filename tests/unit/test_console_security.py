"""The console's security primitives: scrypt password hashes, masked CSRF tokens, the login
limits and the redirect check after login."""

from __future__ import annotations

import time

import pytest

from mailoauth.errors import ConfigError
from mailoauth.secret import Secret
from mailoauth.web.console.accounts import check_admin_name, check_password
from mailoauth.web.console.csrf import mask, matches
from mailoauth.web.console.forms import is_safe_next
from mailoauth.web.console.limits import LoginLimits
from mailoauth.web.console.passwords import (
    DEFAULT_COST,
    ScryptCost,
    hash_password,
    verify_password,
)
from mailoauth.web.console.sessions import new_secret

FAST = ScryptCost(n=2**8)  # the format and checks; DEFAULT_COST where the cost matters
PASSWORD = "lemon kite harbour 4471"


# --- password hashes ------------------------------------------------------------------


def test_a_hash_names_its_parameters_and_never_holds_the_password():
    stored = hash_password(Secret(PASSWORD))
    scheme, params, salt, key = stored.split("$")
    assert (scheme, params) == ("scrypt", "n=32768,r=8,p=1")
    assert len(salt) == 22
    assert len(key) == 43
    assert PASSWORD not in stored


def test_the_right_password_verifies_and_others_do_not():
    stored = hash_password(Secret(PASSWORD), FAST)
    assert verify_password(Secret(PASSWORD), stored)
    assert not verify_password(Secret(PASSWORD + " "), stored)
    assert not verify_password(Secret(""), stored)


def test_two_hashes_of_one_password_differ_by_their_salt():
    assert hash_password(Secret(PASSWORD), FAST) != hash_password(Secret(PASSWORD), FAST)


def test_a_hash_made_with_other_parameters_still_verifies():
    stored = hash_password(Secret(PASSWORD), ScryptCost(n=2**9, r=4, p=2))
    assert verify_password(Secret(PASSWORD), stored)


@pytest.mark.parametrize(
    "stored",
    ["", "plain", "bcrypt$n=2,r=1,p=1$AAAA$AAAA", "scrypt$n=3,r=8,p=1$AAAA$AAAA", "scrypt$$$"],
)
def test_an_unreadable_hash_is_a_refusal_not_a_crash(stored):
    assert not verify_password(Secret(PASSWORD), stored)


def test_an_unknown_admin_costs_as_much_as_a_known_one():
    stored = hash_password(Secret(PASSWORD), DEFAULT_COST)

    def timed(value: str | None) -> float:
        start = time.perf_counter()
        verify_password(Secret("wrong password here"), value)
        return time.perf_counter() - start

    known = min(timed(stored) for _ in range(3))
    unknown = min(timed(None) for _ in range(3))
    assert unknown == pytest.approx(known, rel=0.5)  # same scrypt work, not a shortcut
    assert unknown > 0.01  # it really is a slow hash


def test_scrypt_costs_outside_the_sane_range_are_refused():
    with pytest.raises(ValueError, match="power of 2"):
        ScryptCost(n=1000)
    with pytest.raises(ValueError, match="range"):
        ScryptCost(n=2**22)


# --- names and password rules ---------------------------------------------------------


def test_passwords_need_twelve_characters_and_the_message_never_repeats_them():
    with pytest.raises(ConfigError, match="at least 12") as caught:
        check_password("alice", Secret("short-pw-11"))
    assert "short-pw-11" not in str(caught.value)
    check_password("alice", Secret("twelve chars"))


def test_the_password_may_not_be_the_name():
    with pytest.raises(ConfigError, match="the admin's name"):
        check_password("operator-alice", Secret("Operator-Alice"))


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 65, "é"])
def test_bad_admin_names_are_refused_with_the_rule(name):
    with pytest.raises(ConfigError, match="letters, digits"):
        check_admin_name(name)


# --- CSRF tokens ----------------------------------------------------------------------


def test_a_masked_token_differs_every_time_and_carries_the_secret():
    secret = new_secret()
    first, second = mask(secret), mask(secret)
    assert first != second
    assert secret not in first
    assert matches(secret, first)
    assert matches(secret, second)


@pytest.mark.parametrize("token", ["", "x", "not base64 !", "AAAA"])
def test_garbage_tokens_do_not_match(token):
    assert not matches(new_secret(), token)


def test_a_token_of_another_session_does_not_match():
    assert not matches(new_secret(), mask(new_secret()))


# --- login limits ---------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_five_failures_from_one_address_lock_it_for_five_minutes():
    clock = Clock()
    limits = LoginLimits(clock=clock)
    waits = [limits.failure("203.0.113.9", f"name{i}") for i in range(5)]
    assert waits == [0, 0, 0, 0, 300]
    assert limits.retry_after("203.0.113.9", "someone-else") == 300
    assert limits.retry_after("198.51.100.1", "someone-else") == 0
    clock.now += 301
    assert limits.retry_after("203.0.113.9", "someone-else") == 0


def test_five_failures_for_one_name_lock_it_from_every_address():
    limits = LoginLimits(clock=Clock())
    for i in range(5):
        limits.failure(f"198.51.100.{i}", "Alice")
    assert limits.retry_after("192.0.2.77", "alice") == 300  # names compare case-blind


def test_failures_spread_over_more_than_the_window_never_lock():
    clock = Clock()
    limits = LoginLimits(clock=clock)
    for _ in range(10):
        assert limits.failure("192.0.2.1", "alice") == 0
        clock.now += 76  # never five within any 300 s


def test_a_good_login_starts_the_count_again():
    limits = LoginLimits(clock=Clock())
    for _ in range(4):
        limits.failure("192.0.2.1", "alice")
    limits.success("192.0.2.1", "alice")
    assert limits.failure("192.0.2.1", "alice") == 0


# --- where a login may lead -----------------------------------------------------------


@pytest.mark.parametrize("target", ["/", "/audit", "/mailboxes?x=1"])
def test_local_paths_are_followed_after_login(target):
    assert is_safe_next(target)


@pytest.mark.parametrize(
    "target", [None, "", "https://evil.example/", "//evil.example/", "/\\evil.example", "/a\nb"]
)
def test_other_sites_are_not(target):
    assert not is_safe_next(target)
