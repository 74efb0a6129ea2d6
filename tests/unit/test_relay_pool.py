"""The passthrough relay's pool of idle upstream sessions, on a fake clock: the most
recent session first, dead ones closed and skipped, at most ``max_idle`` per key, none
kept past ``idle_timeout``, all closed at shutdown. And the replies the relay gives for
what happened upstream: the upstream's own code and text, line by line, printable."""

from __future__ import annotations

import asyncio

import pytest

from mailoauth.errors import AuthorizationNeeded, ProviderUnavailable
from mailoauth.relay.passthrough_machine import (
    ReplyReader,
    UpstreamGarbageError,
    unavailable,
)
from mailoauth.relay.pool import SessionPool
from mailoauth.relay.smtp_upstream import token_refused


class FakeSession:
    def __init__(self, name: str) -> None:
        self.name = name
        self.alive = True
        self.closed = False

    async def close(self) -> None:
        self.closed = True
        self.alive = False


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_most_recent_idle_session_is_taken_first():
    pool: SessionPool[FakeSession] = SessionPool(clock=Clock())
    one, two = FakeSession("one"), FakeSession("two")
    pool.put("alice", one)
    pool.put("alice", two)
    assert pool.idle("alice") == 2
    assert pool.take("alice") is two
    assert pool.take("alice") is one
    assert pool.take("alice") is None
    assert pool.take("bob") is None  # keys do not mix
    await pool.close()


async def test_dead_sessions_are_closed_and_skipped():
    pool: SessionPool[FakeSession] = SessionPool(clock=Clock())
    alive, dead = FakeSession("alive"), FakeSession("dead")
    pool.put("alice", alive)
    pool.put("alice", dead)
    dead.alive = False  # the server dropped it while it was idle
    assert pool.take("alice") is alive
    await asyncio.sleep(0)
    assert dead.closed
    pool.put("alice", dead)  # a dead session is not kept either
    assert pool.idle() == 0
    await pool.close()


async def test_at_most_max_idle_sessions_per_key_are_kept():
    pool: SessionPool[FakeSession] = SessionPool(max_idle=2, clock=Clock())
    sessions = [FakeSession(str(n)) for n in range(3)]
    for session in sessions:
        pool.put("alice", session)
    pool.put("bob", FakeSession("bob"))
    await asyncio.sleep(0)
    assert pool.idle("alice") == 2
    assert pool.idle() == 3
    assert sessions[2].closed  # the one too many was said goodbye to at once
    await pool.close()


async def test_idle_sessions_are_closed_after_the_idle_timeout():
    clock = Clock()
    pool: SessionPool[FakeSession] = SessionPool(idle_timeout=30, clock=clock)
    old, new = FakeSession("old"), FakeSession("new")
    pool.put("alice", old)
    clock.now += 20
    pool.put("alice", new)
    clock.now += 15  # old: 35 s idle, new: 15 s
    assert pool.expire() == 1
    await asyncio.sleep(0)
    assert old.closed
    assert not new.closed
    clock.now += 20
    assert pool.take("alice") is None  # new is 35 s idle now: not handed out
    await asyncio.sleep(0)
    assert new.closed
    await pool.close()


async def test_the_reaper_closes_idle_sessions_without_anybody_asking():
    pool: SessionPool[FakeSession] = SessionPool(idle_timeout=0.05)
    session = FakeSession("idle")
    pool.put("alice", session)
    await asyncio.sleep(0.3)
    assert session.closed
    assert pool.idle() == 0
    await pool.close()


async def test_close_says_goodbye_to_every_idle_session():
    pool: SessionPool[FakeSession] = SessionPool(clock=Clock())
    sessions = [FakeSession("a"), FakeSession("b")]
    pool.put("alice", sessions[0])
    pool.put("bob", sessions[1])
    await pool.close()
    assert all(s.closed for s in sessions)
    assert pool.idle() == 0


# --- replies ------------------------------------------------------------------------


def reply_of(wire: bytes) -> bytes:
    """The relay's copy of an upstream reply, read from the upstream's bytes."""
    (reply,) = ReplyReader().feed(wire)
    return reply.wire()


def test_the_upstreams_reply_is_passed_on_with_code_and_enhanced_status():
    assert reply_of(b"250 2.0.0 Ok: queued as 4Xy\r\n") == b"250 2.0.0 Ok: queued as 4Xy\r\n"
    assert reply_of(b"550 5.1.1 <x@example.com>: no such user\r\n") == (
        b"550 5.1.1 <x@example.com>: no such user\r\n"
    )


def test_a_multi_line_reply_keeps_its_lines_and_loses_what_is_not_printable():
    wire = "554-5.7.1 first line\r\n554 5.7.1 second \x1b[31mline\u00e9\r\n".encode()
    assert reply_of(wire) == b"554-5.7.1 first line\r\n554 5.7.1 second ?[31mline?\r\n"


def test_replies_split_anywhere_are_read_whole_and_garbage_is_refused():
    reader = ReplyReader()
    wire = b"250-first\r\n250 second\r\n354 go\r\n"
    got = [reply for i in range(len(wire)) for reply in reader.feed(wire[i : i + 1])]
    assert [(r.code, r.lines) for r in got] == [(250, ("first", "second")), (354, ("go",))]
    with pytest.raises(UpstreamGarbageError):
        ReplyReader().feed(b"HTTP/1.1 400 Bad Request\r\n")
    with pytest.raises(UpstreamGarbageError):
        ReplyReader().feed(b"250" + b"x" * 5000)


def test_the_relays_own_failure_replies_say_what_to_do():
    assert unavailable("alice", "connection refused") == (
        "451 4.4.1 Upstream for alice unavailable (connection refused); try again later"
    )
    needs = AuthorizationNeeded("alice", "the grant was revoked", "authorize it again")
    assert token_refused("alice", needs) == (
        "454 4.7.0 The upstream refused mailbox alice's login; an administrator must "
        "re-authorize it (mailoauth authorize alice)"
    )
    down = ProviderUnavailable("the token endpoint timed out")
    assert token_refused("alice", down).startswith("454 4.7.0 Cannot get a token for mailbox")
