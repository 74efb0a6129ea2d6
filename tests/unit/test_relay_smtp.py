"""The SMTP relay in-process, against a real SQLite store, spoken to by Python's smtplib:
AUTH PLAIN/LOGIN, sender policy, SIZE, the lockout, and "250 only after the commit" —
a store that cannot write answers 451 and nothing is queued."""

from __future__ import annotations

import asyncio
import base64
import logging
import smtplib
from collections.abc import AsyncIterator, Callable
from email.message import EmailMessage
from typing import Any

import pytest

from mailoauth.errors import StoreError
from mailoauth.relay import FailureLimiter, SmtpRelay, add_user
from mailoauth.store import SqlStore, open_store
from tests import store_samples as s
from tests.net import free_port
from tests.stores import sqlite_settings

SALES = "sales@contoso.com"


@pytest.fixture
def store(tmp_path):
    home = tmp_path / "home"
    settings = sqlite_settings(home)
    store = open_store(settings)
    store.put_provider(s.microsoft())
    store.put_mailbox(s.smtp_imap())
    yield store
    store.close()


@pytest.fixture
def password(store: SqlStore) -> str:
    return add_user(store, "pbx", "sales")[1].reveal()


class Relay:
    def __init__(self, relay: SmtpRelay, nudged: list[str]) -> None:
        self.relay, self.nudged = relay, nudged

    async def client(self, work: Callable[[smtplib.SMTP], Any]) -> Any:
        """Run ``work`` with a connected smtplib client in a thread (smtplib blocks)."""

        def run() -> Any:
            with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=5) as smtp:
                smtp.ehlo("test")
                return work(smtp)

        return await asyncio.to_thread(run)


async def serve(store: Any, limiter: FailureLimiter | None = None) -> AsyncIterator[Relay]:
    nudged: list[str] = []

    async def nudge(mailbox: str) -> None:
        nudged.append(mailbox)

    relay = SmtpRelay(store, "127.0.0.1", free_port(), nudge=nudge, limiter=limiter)
    await relay.start()
    try:
        yield Relay(relay, nudged)
    finally:
        await relay.stop()


@pytest.fixture
async def relay(store: SqlStore, password: str) -> AsyncIterator[Relay]:
    async for running in serve(store):
        yield running


def note(sender: str = SALES, message_id: str = "<relay-1@pbx.example>") -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = "bob@example.com"
    message["Subject"] = "voicemail"
    message["Message-ID"] = message_id
    message.set_content("You have a new voicemail.\n")
    return message


def login(mechanism: str, user: str, password: str) -> Callable[[smtplib.SMTP], None]:
    def work(smtp: smtplib.SMTP) -> None:
        smtp.user, smtp.password = user, password
        method = smtp.auth_plain if mechanism == "PLAIN" else smtp.auth_login
        smtp.auth(mechanism, method, initial_response_ok=mechanism == "PLAIN")

    return work


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_a_logged_in_app_gets_queued_as_only_after_the_commit(
    relay: Relay, store: SqlStore, password: str, mechanism: str, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)

    def send(smtp: smtplib.SMTP) -> tuple[int, bytes]:
        login(mechanism, "pbx", password)(smtp)
        smtp.mail(SALES)
        smtp.rcpt("bob@example.com")
        smtp.rcpt("carol@example.org")
        return smtp.data(note().as_bytes())

    code, reply = await relay.client(send)
    (entry,) = store.list_outbound()
    assert (code, reply.decode()) == (250, f"2.0.0 queued as {entry.id}")
    assert entry.mailbox == "sales"
    assert entry.message_id == "<relay-1@pbx.example>"
    assert (entry.sender, entry.recipients) == (SALES, ("bob@example.com", "carol@example.org"))
    await asyncio.sleep(0)
    assert relay.nudged == ["sales"]  # delivery starts now, not at the next tick
    assert "pbx logged in" in caplog.text
    assert password not in caplog.text


async def test_the_advertised_size_is_enforced(relay: Relay, password: str):
    def oversize(smtp: smtplib.SMTP) -> tuple[str, tuple[int, bytes]]:
        login("PLAIN", "pbx", password)(smtp)
        return smtp.esmtp_features["size"], smtp.mail(SALES, ["SIZE=40000000"])

    size, (code, reply) = await relay.client(oversize)
    assert size == str(35 * 1024 * 1024)
    assert code == 552
    assert b"size" in reply


async def test_mail_needs_a_login_and_an_allowed_sender(relay: Relay, password: str):
    def anonymous(smtp: smtplib.SMTP) -> tuple[int, bytes]:
        return smtp.mail(SALES)

    code, reply = await relay.client(anonymous)
    assert code == 530
    assert b"Authentication required" in reply

    def other_sender(smtp: smtplib.SMTP) -> tuple[int, bytes]:
        login("PLAIN", "pbx", password)(smtp)
        return smtp.mail("boss@contoso.com")

    code, reply = await relay.client(other_sender)
    assert code == 553
    assert reply.decode() == (
        "5.7.1 <boss@contoso.com> is not a sender pbx may use; allowed: sales@contoso.com"
    )


async def test_a_header_from_not_allowed_is_refused_and_not_queued(
    relay: Relay, store: SqlStore, password: str
):
    def forged(smtp: smtplib.SMTP) -> None:
        login("PLAIN", "pbx", password)(smtp)
        smtp.sendmail(SALES, ["bob@example.com"], note(sender="ceo@contoso.com").as_bytes())

    with pytest.raises(smtplib.SMTPDataError) as refused:
        await relay.client(forged)
    assert refused.value.smtp_code == 553
    assert b"<ceo@contoso.com>" in refused.value.smtp_error
    assert store.list_outbound() == []


async def test_wrong_passwords_get_535_then_the_address_is_locked_out(
    store: SqlStore, password: str
):
    async for relay in serve(store, FailureLimiter(max_failures=3)):

        def attempts(smtp: smtplib.SMTP) -> list[tuple[int, str]]:
            replies = []
            for user in ("pbx", "nobody", "pbx", "pbx"):
                smtp.putcmd("AUTH", "PLAIN " + _plain(user, "wrong"))
                code, reply = smtp.getreply()
                replies.append((code, reply.decode()))
            smtp.putcmd("AUTH", "PLAIN " + _plain("pbx", password))  # even the right one
            code, reply = smtp.getreply()
            return [*replies, (code, reply.decode())]

        replies = await relay.client(attempts)
    invalid = (535, "5.7.8 Authentication credentials invalid")
    assert replies[:2] == [invalid, invalid]
    locked = "4.7.0 Too many failed logins from your address; try again in 300 s"
    assert replies[2] == (454, locked)
    assert replies[3][0] == 454
    assert replies[4][0] == 454


def _plain(user: str, password: str) -> str:
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


class BrokenStore:
    """The real store, except that it cannot commit a queued message."""

    def __init__(self, store: SqlStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def queue_messages(self, *args: object, **kw: object) -> None:
        raise StoreError("database is locked")


async def test_a_store_failure_answers_451_and_nothing_is_queued(store: SqlStore, password: str):
    async for relay in serve(BrokenStore(store)):

        def send(smtp: smtplib.SMTP) -> None:
            login("LOGIN", "pbx", password)(smtp)
            smtp.sendmail(SALES, ["bob@example.com"], note().as_bytes())

        with pytest.raises(smtplib.SMTPDataError) as refused:
            await relay.client(send)
        assert relay.nudged == []
    assert refused.value.smtp_code == 451
    assert refused.value.smtp_error.startswith(b"4.3.0 Could not store the message")
    assert store.list_outbound() == []


async def test_a_burst_of_messages_costs_two_delivery_runs_not_one_each(
    store: SqlStore, password: str
):
    release, calls = asyncio.Event(), []

    async def slow_nudge(mailbox: str) -> None:
        calls.append(mailbox)
        await release.wait()

    relay = SmtpRelay(store, "127.0.0.1", free_port(), nudge=slow_nudge)
    await relay.start()
    try:

        def burst(smtp: smtplib.SMTP) -> None:
            login("PLAIN", "pbx", password)(smtp)
            for n in range(4):
                smtp.sendmail(SALES, ["bob@example.com"], note(message_id=f"<b{n}@x>").as_bytes())

        await Relay(relay, []).client(burst)
        assert calls == ["sales"]  # the first run is still going
        release.set()
    finally:
        await relay.stop()  # waits for the runs it started
    assert calls == ["sales", "sales"]  # one more for the messages that came meanwhile
    assert len(store.list_outbound()) == 4


async def test_connections_logins_and_messages_are_counted(relay: Relay, password: str):
    def session(smtp: smtplib.SMTP) -> None:
        with pytest.raises(smtplib.SMTPAuthenticationError):
            login("PLAIN", "pbx", "wrong")(smtp)
        login("PLAIN", "pbx", password)(smtp)
        smtp.sendmail(SALES, ["bob@example.com"], note().as_bytes())
        with pytest.raises(smtplib.SMTPSenderRefused):
            smtp.sendmail("boss@contoso.com", ["bob@example.com"], note().as_bytes())

    await relay.client(session)
    counters = relay.relay.counters
    deadline = asyncio.get_running_loop().time() + 5
    while counters.snapshot().connections.get("smtp"):  # the relay saw the QUIT
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    snapshot = counters.snapshot()
    assert snapshot.connections == {"smtp": 0}
    assert snapshot.logins == {("smtp", "refused"): 1, ("smtp", "ok"): 1}
    assert snapshot.messages == {("queue", "queued"): 1, ("queue", "rejected"): 1}
