"""Group commit: concurrent acceptances share one transaction, each caller gets its own
row back only after the commit, and a failed commit acknowledges nothing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest

from mailoauth.errors import NotFoundError
from mailoauth.queue.group import GroupCommit
from mailoauth.store import NewMessage, QueuedMessage, QueueStatus, SqlStore, open_store
from tests import store_samples as s
from tests.stores import sqlite_settings


class SlowStore(SqlStore):
    """The real store; each commit also waits for a gate, like a slow fsync."""

    gate: threading.Event
    rounds: list[int]

    def queue_messages(
        self, messages: Sequence[tuple[str, NewMessage]], *, now: datetime
    ) -> list[QueuedMessage]:
        self.rounds.append(len(messages))
        self.gate.wait(10)
        return super().queue_messages(messages, now=now)


@pytest.fixture
def store(tmp_path: Path):
    home = tmp_path / "home"
    settings = sqlite_settings(home)
    opened = open_store(settings)
    opened.__class__ = SlowStore
    assert isinstance(opened, SlowStore)
    opened.gate, opened.rounds = threading.Event(), []
    s.store_everything(opened)
    yield opened
    opened.close()


def entry(n: int) -> NewMessage:
    return NewMessage(
        message_id=f"<{n}@app.example>",
        sender="sales@example.com",
        recipients=("a@example.org",),
        subject=f"note {n}",
        data=f"Message-ID: <{n}@app.example>\r\n\r\nbody {n}\r\n".encode(),
    )


async def test_messages_arriving_during_a_commit_share_the_next_one(store: SlowStore):
    group = GroupCommit(store)
    first = asyncio.ensure_future(group.add("sales", entry(0)))
    await asyncio.sleep(0.05)  # the first commit is in flight, waiting for the gate
    rest = [asyncio.ensure_future(group.add("sales", entry(n))) for n in range(1, 9)]
    await asyncio.sleep(0.05)
    assert not first.done()  # nothing is acknowledged before its commit
    store.gate.set()
    stored = [await first, *[await r for r in rest]]
    assert store.rounds == [1, 8]
    assert group.commits == 2
    assert [e.message_id for e in stored] == [f"<{n}@app.example>" for n in range(9)]
    assert {e.status for e in stored} == {QueueStatus.QUEUED}
    assert len(store.list_outbound(limit=100)) == 9


async def test_a_failed_commit_acknowledges_none_of_its_round(store: SlowStore):
    store.gate.set()
    group = GroupCommit(store)
    results = await asyncio.gather(
        group.add("sales", entry(1)),
        group.add("no-such-mailbox", entry(2)),  # fails the whole transaction
        return_exceptions=True,
    )
    assert all(isinstance(r, NotFoundError) for r in results), results
    assert store.list_outbound(limit=10) == []
    assert isinstance(await group.add("sales", entry(3)), QueuedMessage)  # goes on after


async def test_a_caller_that_goes_away_does_not_stop_the_round(store: SlowStore):
    group = GroupCommit(store)
    gone = asyncio.ensure_future(group.add("sales", entry(1)))
    await asyncio.sleep(0.05)
    gone.cancel()
    store.gate.set()
    stored = await group.add("sales", entry(2))
    assert stored.message_id == "<2@app.example>"
    assert {e.message_id for e in store.list_outbound(limit=10)} == {
        "<1@app.example>",
        "<2@app.example>",
    }
