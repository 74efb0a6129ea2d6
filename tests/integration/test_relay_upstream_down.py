"""The upstream is down for a while: the real `mailoauth relay` still accepts (``250
queued``), its delivery run fails temporarily, `mailoauth queue list` says that the
message waits, until when, and why; once Dovecot is reachable again, `mailoauth queue
retry` + `queue run` deliver it — exactly once, however often the queue is run after.

Dovecot is taken away by a :class:`~tests.relay_helpers.Gate` between the relay and its
submission port (closed: connections refused), so the mailbox's settings never change.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mailoauth.store import QueuedMessage, QueueStatus, SqlStore
from tests.cli import Cli
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import Dovecot
from tests.relay_helpers import (
    Client,
    Gate,
    RelayProcess,
    inbox,
    note,
    open_cli_store,
    relay_mailbox,
    relay_port,
    running,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def gate(dovecot: Dovecot) -> Iterator[Gate]:
    gate = Gate(dovecot.ports.submission)
    try:
        yield gate
    finally:
        gate.shutdown()


def wait_for_attempt(store: SqlStore, entry_id: int, seconds: float = 30) -> QueuedMessage:
    """The entry once a delivery run has settled it (one attempt made, not ``sending``)."""
    deadline = time.monotonic() + seconds
    while True:
        entry = store.get_outbound(entry_id)
        if entry.attempts >= 1 and entry.status is not QueueStatus.SENDING:
            return entry
        assert time.monotonic() < deadline, entry
        time.sleep(0.1)


def test_mail_waits_while_the_upstream_is_down_and_goes_once_when_it_is_back(
    cli: Cli, auth_server: AuthServer, dovecot: Dovecot, gate: Gate, tmp_path: Path
) -> None:
    password = relay_mailbox(cli, auth_server, dovecot, tmp_path, upstream=gate.port)
    store = open_cli_store(cli)
    try:
        with running(RelayProcess(cli, tmp_path / "relay.log")):
            code, reply = Client(relay_port(cli), password).submit(note("<down@app.example>"))
            assert code == 250  # the gate is closed: accepted all the same
            found = re.fullmatch(r"2\.0\.0 queued as (\d+)", reply)
            assert found is not None, reply
            entry_id = int(found.group(1))
            waiting = wait_for_attempt(store, entry_id)  # the relay's own delivery run
        error = waiting.last_error or ""
        assert waiting.status is QueueStatus.QUEUED
        assert error.startswith(f"cannot connect to the SMTP server (127.0.0.1:{gate.port}: ")
        assert waiting.next_attempt_at > datetime.now(UTC)

        listing = cli.ok("queue", "list", env={"COLUMNS": "250"})
        row = re.search(rf"^\W*{entry_id}\W+alice\W+queued\W+1\W+next \d\d-\d\d \d\d:\d\d.*$",
                        listing, re.MULTILINE)  # fmt: skip
        assert row is not None, listing
        assert "cannot connect to the SMTP server" in row.group(0)

        # Not due yet: a run now leaves it alone.
        assert cli.ok("queue", "run").splitlines() == ["sent 0, retry later 0, failed 0, dead 0"]
        assert inbox(dovecot) == []

        gate.open()  # Dovecot is reachable again
        assert "is queued again and due now" in cli.ok("queue", "retry", str(entry_id))
        assert cli.ok("queue", "run").splitlines() == ["sent 1, retry later 0, failed 0, dead 0"]
        assert cli.ok("queue", "run").splitlines() == ["sent 0, retry later 0, failed 0, dead 0"]
        assert inbox(dovecot) == [("<down@app.example>", "You have a new voicemail.")]
        done = store.get_outbound(entry_id)
        assert (done.status, done.attempts) == (QueueStatus.SENT, 2)
    finally:
        store.close()
