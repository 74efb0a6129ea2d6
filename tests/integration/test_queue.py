"""The durable outbound queue against real servers: Dovecot submission (tokens from the
test authorization server by the password grant, checked by introspection), the Graph
double, and the `mailoauth` command line. Accepted = stored; delivered once; retried
while the server is down; failed for good when it refuses; a crash re-sends the same
Message-ID; two runs never send the same message."""

from __future__ import annotations

import asyncio
import email
import re
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from mailoauth.config import Settings
from mailoauth.mail.connect import tls_context
from mailoauth.models import Grant, Mailbox, OutgoingSettings, Provider
from mailoauth.oauth.tokens import TokenService
from mailoauth.providers import GrantType, ProviderKind
from mailoauth.queue import DrainReport, QueueStatus, drain, enqueue
from mailoauth.secret import Secret
from mailoauth.store import SqlStore, open_store
from tests.cli import MAILOAUTH, Cli
from tests.mail_setup import apply_password_mailboxes
from tests.net import free_port
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import ALICE, BOB, PASSWORD, Dovecot
from tests.peers.mailapi import MailApi
from tests.stores import open_sqlite

pytestmark = pytest.mark.integration

LATER = timedelta(hours=2)  # past any first retry's wait


def alice(port: int) -> Mailbox:
    return Mailbox(
        name="alice",
        provider="test",
        login=ALICE,
        grant=GrantType.PASSWORD,
        password=Secret(PASSWORD),
        display_name="Alice",
        outgoing=OutgoingSettings(host="127.0.0.1", port=port),  # type: ignore[arg-type]
    )


@pytest.fixture
def store(tmp_path: Path, auth_server: AuthServer, dovecot: Dovecot) -> SqlStore:
    auth_server.add_mail_client()
    auth_server.add_user(ALICE, PASSWORD)
    store = open_sqlite(tmp_path / "home")
    store.put_provider(auth_server.mail_provider())
    store.put_mailbox(alice(dovecot.ports.submission))
    yield store  # type: ignore[misc]
    store.close()


@pytest.fixture
async def run(store: SqlStore, dovecot: Dovecot) -> AsyncIterator[Callable[..., object]]:
    """``await run(**drain_options)``: one delivery run with the real token service."""
    async with httpx.AsyncClient(timeout=10) as http:
        tokens = TokenService(store, http)

        async def once(target: object = None, **kw: object) -> DrainReport:
            return await drain(target or store, tokens, http, ca_file=str(dovecot.ca_path), **kw)  # type: ignore[arg-type]

        yield once
        await tokens.drain()


def note(subject: str, to: str = BOB) -> EmailMessage:
    message = EmailMessage()
    message["To"] = to
    message["Subject"] = subject
    message.set_content(f"{subject}\n")
    return message


def inbox_ids(dovecot: Dovecot, user: str = BOB) -> list[str]:
    found = []
    for sub in ("new", "cur"):
        folder = dovecot.mail_dir(user) / sub
        if folder.is_dir():
            for path in folder.iterdir():
                found.append(email.message_from_bytes(path.read_bytes())["Message-ID"])
    return sorted(found)


def logins(dovecot: Dovecot) -> int:
    return dovecot.log_text().count("submission-login: Info: Login:")


def shifted(delta: timedelta) -> Callable[[], datetime]:
    return lambda: datetime.now(UTC) + delta


async def test_five_queued_messages_arrive_once_over_one_login(store, run, dovecot):
    queued = [enqueue(store, "alice", note(f"queued {n}")) for n in range(5)]
    assert inbox_ids(dovecot) == []  # accepted, not yet sent
    report = await run()
    assert (report.sent, report.retry_later, report.failed, report.dead) == (5, 0, 0, 0)
    assert inbox_ids(dovecot) == sorted(q.message_id for q in queued)
    assert logins(dovecot) == 1
    assert {store.get_outbound(q.id).status for q in queued} == {QueueStatus.SENT}
    assert await run() == DrainReport()  # nothing due: nothing sent twice
    assert len(inbox_ids(dovecot)) == 5


async def test_a_server_that_is_down_is_retried_later_then_delivered(store, run, dovecot):
    store.put_mailbox(alice(free_port()))
    queued = enqueue(store, "alice", note("waits for the server"))
    report = await run()
    assert (report.sent, report.retry_later) == (0, 1)
    waiting = store.get_outbound(queued.id)
    assert waiting.status is QueueStatus.QUEUED
    assert "cannot connect to the SMTP server" in (waiting.last_error or "")
    assert waiting.next_attempt_at > datetime.now(UTC)
    assert await run() == DrainReport()  # not due yet
    store.put_mailbox(alice(dovecot.ports.submission))  # the admin fixes the port
    assert (await run(now=shifted(LATER))).sent == 1
    assert inbox_ids(dovecot) == [queued.message_id]
    assert store.get_outbound(queued.id).attempts == 2


async def test_a_refused_recipient_fails_that_message_and_the_others_go(store, run, dovecot):
    good = enqueue(store, "alice", note("first"))
    bad = enqueue(store, "alice", note("refused", to="bob@[1.2.3]"))  # Dovecot: 501
    last = enqueue(store, "alice", note("last"))
    report = await run()
    assert (report.sent, report.failed) == (2, 1)
    assert inbox_ids(dovecot) == sorted([good.message_id, last.message_id])
    failed = store.get_outbound(bad.id)
    assert failed.status is QueueStatus.FAILED
    assert "bob@[1.2.3]: 501" in (failed.last_error or "")
    assert await run(now=shifted(LATER)) == DrainReport()  # failed is final


async def test_concurrent_runs_with_different_owners_send_each_message_once(store, run, dovecot):
    queued = [enqueue(store, "alice", note(f"race {n}")) for n in range(6)]

    async def worker(name: str) -> int:
        sent = 0
        while (report := await run(owner=name, limit=2)) != DrainReport():
            sent += report.sent
        return sent

    totals = await asyncio.gather(worker("node-a"), worker("node-b"))
    assert sum(totals) == 6
    assert inbox_ids(dovecot) == sorted(q.message_id for q in queued)


class CrashOnceAfterAcceptance:
    """The store, except that marking the first message sent dies like a killed process."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.crashed = False

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)

    def settle_outbound(self, entry_id, owner, status, **kw):
        if status is QueueStatus.SENT and not self.crashed:
            self.crashed = True
            raise RuntimeError("killed between the server's 250 and the store's commit")
        return self.store.settle_outbound(entry_id, owner, status, **kw)


async def test_a_crash_after_the_servers_acceptance_resends_the_same_message_id(
    store, run, dovecot
):
    queued = enqueue(store, "alice", note("at least once"))
    with pytest.raises(RuntimeError, match="killed"):
        await run(CrashOnceAfterAcceptance(store))
    assert inbox_ids(dovecot) == [queued.message_id]  # it did go out
    assert store.get_outbound(queued.id).status is QueueStatus.SENDING
    assert await run() == DrainReport()  # the dead run's lease still holds
    assert (await run(now=shifted(timedelta(minutes=11)))).sent == 1  # lease ran out
    assert inbox_ids(dovecot) == [queued.message_id] * 2  # a duplicate, recognisably
    assert store.get_outbound(queued.id).attempts == 2


async def test_a_mailbox_that_needs_authorization_waits_and_says_why(
    store, run, dovecot, auth_server
):
    store.put_mailbox(replace(alice(dovecot.ports.submission), password=Secret("wrong")))
    queued = enqueue(store, "alice", note("needs a human"))
    report = await run()
    assert report.retry_later == 1
    (problem,) = report.problems
    assert problem.startswith("alice: mailbox 'alice' needs authorization")
    waiting = store.get_outbound(queued.id)
    assert waiting.status is QueueStatus.QUEUED
    assert "needs authorization" in (waiting.last_error or "")
    assert "wrong" not in problem  # the password is not repeated


async def test_graph_batches_and_envelope_recipients_missing_from_the_headers(
    tmp_path: Path, mail_api: MailApi
):
    store = open_sqlite(tmp_path / "graph")
    user, token = "desk@contoso.com", "graph-access-token-for-the-queue"
    store.put_provider(
        Provider(name="m", kind=ProviderKind.MICROSOFT, client_id="id", tenant="contoso.com",
                 client_secret=Secret("s"))
    )  # fmt: skip
    api = {"transport": "graph", "host": "127.0.0.1", "port": mail_api.port}
    store.put_mailbox(
        Mailbox(name="desk", provider="m", login=user, outgoing=OutgoingSettings(**api))  # type: ignore[arg-type]
    )
    expires = datetime.now(UTC) + timedelta(hours=1)
    store.put_grant(Grant(mailbox="desk", access_token=Secret(token), expires_at=expires))
    mail_api.allow(token, user)
    enqueue(store, "desk", note("plain", to="a@example.org"))
    relayed = enqueue(
        store, "desk", note("relayed", to="a@example.org"), envelope=(user, ["hidden@example.org"])
    )
    async with httpx.AsyncClient(verify=tls_context(str(mail_api.ca_path))) as http:
        report = await drain(store, TokenService(store, http), http)
    store.close()
    assert report.sent == 2
    sent = [email.message_from_bytes(raw, policy=policy.default) for raw in
            mail_api.graph(user).sent()]  # fmt: skip
    by_subject = {m["Subject"]: m for m in sent}
    assert by_subject["relayed"]["Bcc"] == "hidden@example.org"
    assert by_subject["relayed"]["Message-ID"] == relayed.message_id
    assert by_subject["plain"]["Bcc"] is None


# --- the command line --------------------------------------------------------------------


@pytest.fixture
def queue_cli(cli: Cli, auth_server: AuthServer, dovecot: Dovecot, tmp_path: Path) -> Cli:
    return apply_password_mailboxes(
        cli,
        auth_server,
        dovecot,
        tmp_path,
        {
            name: f"""
login = "{ALICE}"
outgoing = {{ host = "127.0.0.1", port = {port} }}
"""
            for name, port in (("alice", dovecot.ports.submission), ("down", free_port()))
        },
    )


def test_send_queue_and_the_queue_commands(queue_cli: Cli, dovecot: Dovecot):
    out = queue_cli.ok(
        "send", "alice", "--to", BOB, "--subject", "via the queue", "--body", "secret plans",
        "--queue",
    )  # fmt: skip
    queued, sent = out.splitlines()
    assert re.fullmatch(r"queued 1: <\S+> from alice to 1 recipient\(s\)", queued)
    assert sent == "sent 1"
    (first,) = inbox_ids(dovecot)
    # The server is down: still exit 0, it waits, and the user is told where to look.
    out = queue_cli.ok("send", "down", "--to", BOB, "--subject", "later", "--body", "x", "--queue")
    assert out.startswith("queued 2: ")
    assert "not sent yet: cannot connect to the SMTP server" in out
    assert "stays queued" in out
    assert "mailoauth queue show 2" in out
    # Refused for good: exit 1 with the server's reason.
    refused = queue_cli.fails("send", "alice", "--to", "bob@[1.2.3]", "--body", "x", "--queue",
                              code=1)  # fmt: skip
    assert refused.startswith("message 3 will not be sent: ")
    assert "501" in refused

    listing = queue_cli.ok("queue", "list", env={"COLUMNS": "200"})  # one line per row
    for row in (r"1\W+alice\W+sent\W+1\W+sent \d\d-\d\d", r"2\W+down\W+queued\W+1\W+next",
                r"3\W+alice\W+failed\W+1\W+last try"):  # fmt: skip
        assert re.search(row, listing), listing
    shown = queue_cli.ok("queue", "show", "1", "--body")
    assert "Subject: via the queue" in shown
    assert "status      sent" in shown
    assert shown.rstrip().endswith("secret plans")  # the body only when asked (--body)
    assert "is queued again and due now" in queue_cli.ok("queue", "retry", "3")
    assert "deleted message 2 (queued) of down" in queue_cli.ok("queue", "purge", "2")

    # Two `queue run` processes at once (the service on two nodes): each message once.
    store = open_store(Settings.load({}, data_dir=queue_cli.home))
    store.purge_outbound(3)
    queued = [enqueue(store, "alice", note(f"two runs {n}")) for n in range(6)]
    store.close()
    runs = [
        subprocess.Popen(
            [MAILOAUTH, "queue", "run"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=queue_cli.environ(),
        )
        for _ in range(2)
    ]
    outputs = [r.communicate(timeout=60) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outputs
    sent = [int(re.match(r"sent (\d+),", out).group(1)) for out, _ in outputs]  # type: ignore[union-attr]
    assert sum(sent) == 6, outputs
    assert inbox_ids(dovecot) == sorted([first] + [q.message_id for q in queued])
