"""The scheduler inside the real `mailoauth serve`: a password-grant mailbox at the test
authorization server, new mail in Dovecot's INBOX fetched into a Maildir without anyone
running `mailoauth fetch`, /metrics counting it, and SIGTERM draining a token refresh
still in flight before the process exits 0."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cli import MAILOAUTH, Cli
from tests.integration.test_serve import wait_healthy
from tests.mail_setup import apply_password_mailboxes
from tests.net import free_port
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import ALICE, PASSWORD, Dovecot

pytestmark = pytest.mark.integration

MESSAGE = (
    b"From: Carol <carol@example.org>\r\nTo: alice@example.com\r\n"
    b"Subject: arrived while nobody watched\r\nMessage-ID: <sched-1@example.org>\r\n"
    b"\r\nThe service fetched this on its own.\r\n"
)


@pytest.fixture
def alice(cli: Cli, auth_server: AuthServer, dovecot: Dovecot, tmp_path: Path) -> Path:
    """ALICE on the password grant, fetching IMAPS into a Maildir; returns the Maildir."""
    maildir = tmp_path / "alice-mail"
    apply_password_mailboxes(
        cli,
        auth_server,
        dovecot,
        tmp_path,
        {
            "alice": f"""
login = "{ALICE}"

[mailboxes.alice.incoming]
transport = "imap"
host = "127.0.0.1"
port = {dovecot.ports.imaps}
security = "ssl"
deliver = "maildir:{maildir}"
"""
        },
    )
    return maildir


@contextmanager
def serving(cli: Cli) -> Iterator[tuple[str, list[str]]]:
    """`mailoauth serve` on a free port; yields its URL and, after SIGTERM, its stderr."""
    port = free_port()
    proc = subprocess.Popen(
        [MAILOAUTH, "serve", "--listen", f"127.0.0.1:{port}"],
        env=cli.environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    output: list[str] = []
    try:
        wait_healthy(f"{url}/healthz", proc)
        yield url, output
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        output.append(out + err)
    assert proc.returncode == 0, err
    assert "mailoauth stopped" in err


def metric(url: str, name: str, **labels: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    raise AssertionError(f"{name}{labels} not in /metrics:\n{text}")


def wait_for_metric(url: str, name: str, value: float, seconds: float = 5) -> None:
    deadline = time.monotonic() + seconds
    while (got := metric(url, name)) != value:
        assert time.monotonic() < deadline, f"{name} is {got}, not {value}"
        time.sleep(0.05)


def wait_for_files(path: Path, seconds: float) -> list[Path]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = sorted((path / "new").glob("*")) if (path / "new").is_dir() else []
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"nothing arrived in {path} within {seconds} s")


def test_new_mail_is_fetched_without_anyone_asking_and_counted(
    cli: Cli, alice: Path, dovecot: Dovecot
):
    dovecot.deliver(ALICE, MESSAGE)
    with serving(cli) as (url, output):
        (arrived,) = wait_for_files(alice, seconds=8)  # first poll: start-up + at most 2 s
        assert b"Subject: arrived while nobody watched" in arrived.read_bytes()
        wait_for_metric(url, "mailoauth_fetched_messages_total", 1)  # the fetch has ended
        assert metric(url, "mailoauth_fetches_total", result="ok") >= 1
        assert metric(url, "mailoauth_fetches_total", result="failed") == 0
        assert metric(url, "mailoauth_mailboxes", state="connected") == 1
        assert metric(url, "mailoauth_queue_depth") == 0
        # The password mailbox got its token from the scheduler, not from a send.
        assert metric(url, "mailoauth_token_refreshes_total", result="ok") == 1
    (log,) = output
    assert "fetched 1 message(s) from alice/INBOX" in log
    assert PASSWORD not in log
    assert "app-secret" not in log


def test_sigterm_drains_a_token_refresh_in_flight_and_exits_0(
    cli: Cli, alice: Path, auth_server: AuthServer
):
    auth_server.fail("slow", count=1, seconds=1.5)  # the first token request is slow
    started = time.monotonic()
    with serving(cli) as (url, _output):
        deadline = time.monotonic() + 5
        while metric(url, "mailoauth_scheduler_jobs_running") == 0:
            assert time.monotonic() < deadline, "the scheduler started no job"
            time.sleep(0.05)
    assert time.monotonic() - started < 12
    (status,) = json.loads(cli.ok("status", "--json"))
    assert status["status"] == "connected"  # the refresh finished and was stored
    assert auth_server.token_requests("password") == 1
