"""The SMTP relay in PASSTHROUGH mode, in-process, against a small SMTP server of the
test's own that can misbehave on cue (drop the connection, never answer): replies come
from the upstream, a session dropped while idle in the pool is replaced before the client
hears anything, a connection lost mid-transaction or an upstream that never answers is a
``451 4.4.1`` within the timeout, bare line feeds cannot smuggle a second message, and
a login whose mailbox cannot do passthrough is told why. Real SQLite store, real
TokenService (the stored token is valid, so no token endpoint is needed), stdlib smtplib
clients in threads."""

from __future__ import annotations

import asyncio
import smtplib
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from mailoauth.models import Grant, Mailbox, OutgoingSettings
from mailoauth.oauth.tokens import TokenService
from mailoauth.providers import GrantType
from mailoauth.relay import RelayMode, SmtpRelay, add_user
from mailoauth.relay.smtp_upstream import nodelay
from mailoauth.secret import Secret
from mailoauth.store import SqlStore
from tests import store_samples as s
from tests.net import free_port
from tests.stores import open_sqlite

SENDER = "scanner@corp.example"
TOKEN = "toy-access-token"


class Toy:
    """An SMTP server that accepts any XOAUTH2 login and records what it gets.
    ``misbehave[(connection, verb)]``: ``drop`` (close instead of answering) or ``hang``
    (never answer); verb ``END`` is the end of the data, ``BUSY`` refuses the login for
    now."""

    def __init__(self) -> None:
        self.connections = 0
        self.logins = 0
        self.commands: list[bytes] = []
        self.messages: list[bytes] = []
        self.misbehave: dict[tuple[int, bytes], str] = {}
        self._stop = asyncio.Event()
        self._writers: list[asyncio.StreamWriter] = []
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0, limit=1 << 24)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self._stop.set()
        self._server.close()
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    def drop_idle(self) -> None:
        """Close every connection from the server's side (an idle timeout upstream)."""
        for writer in self._writers:
            writer.close()

    async def _act(self, number: int, verb: bytes, writer: asyncio.StreamWriter) -> bool:
        action = self.misbehave.pop((number, verb), None)
        if action == "drop":
            writer.close()
            return False
        if action == "hang":
            await self._stop.wait()
            return False
        return True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()  # the relay went away, as it may

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        self._writers.append(writer)
        writer.write(b"220 toy.example ESMTP\r\n")
        while line := await reader.readline():
            verb = line[:4].upper()
            self.commands.append(line.rstrip())
            if not await self._act(number, verb, writer):
                return
            if verb == b"EHLO":
                writer.write(
                    b"250-toy.example\r\n250-SIZE 1000000\r\n250-8BITMIME\r\n"
                    b"250-PIPELINING\r\n250 AUTH XOAUTH2\r\n"
                )
            elif verb == b"AUTH" and self.misbehave.pop((number, b"BUSY"), None):
                writer.write(b"454 4.7.0 toy: too many connections, try later\r\n")
            elif verb == b"AUTH":
                self.logins += 1
                writer.write(b"235 2.7.0 toy welcomes you\r\n")
            elif verb == b"MAIL":
                writer.write(b"250 2.1.0 toy sender ok\r\n")
            elif verb == b"RCPT":
                refused = b"nobody" in line
                writer.write(b"550 5.1.1 toy: no such user\r\n" if refused else b"250 2.1.5 ok\r\n")
            elif verb == b"DATA":
                writer.write(b"354 toy go ahead\r\n")
                self.messages.append(await reader.readuntil(b"\r\n.\r\n"))
                if not await self._act(number, b"END", writer):
                    return
                writer.write(f"250 2.0.0 toy queued as {len(self.messages)}\r\n".encode())
            elif verb == b"RSET":
                writer.write(b"250 2.0.0 toy reset\r\n")
            elif verb == b"QUIT":
                writer.write(b"221 2.0.0 toy bye\r\n")
                writer.close()
                return
            else:
                writer.write(b"502 5.5.1 toy does not know that\r\n")


@pytest.fixture
async def toy() -> AsyncIterator[Toy]:
    server = Toy()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def store(tmp_path: Any, toy: Toy) -> Any:
    home = tmp_path / "home"
    store = open_sqlite(home)
    store.put_provider(s.generic())  # "corp"; its token endpoint is never asked
    outgoing = OutgoingSettings(
        host="127.0.0.1", port=toy.port, security="none", allow_insecure=True
    )
    store.put_mailbox(
        Mailbox(
            name="scans",
            provider="corp",
            login=SENDER,
            grant=GrantType.PASSWORD,
            password=Secret("pw"),
            addresses=(SENDER,),
            outgoing=outgoing,
        )
    )
    expires = datetime.now(UTC) + timedelta(hours=2)
    store.put_grant(Grant(mailbox="scans", access_token=Secret(TOKEN), expires_at=expires))
    yield store
    store.close()


class Client:
    def __init__(self, relay: SmtpRelay, password: str) -> None:
        self.relay, self.password = relay, password

    async def run(self, work: Callable[[smtplib.SMTP], Any]) -> Any:
        def run() -> Any:
            with smtplib.SMTP("127.0.0.1", self.relay.port, timeout=10) as smtp:
                smtp.login("scanner", self.password)
                return work(smtp)

        return await asyncio.to_thread(run)


async def serve(store: SqlStore, **options: Any) -> AsyncIterator[Client]:
    _, password = add_user(store, "scanner", "scans", mode=RelayMode.PASSTHROUGH)
    async with httpx.AsyncClient() as http:
        options.setdefault("tokens", TokenService(store, http))
        relay = SmtpRelay(store, "127.0.0.1", free_port(), **options)
        await relay.start()
        try:
            yield Client(relay, password.reveal())
        finally:
            await relay.stop()


@pytest.fixture
async def client(store: SqlStore) -> AsyncIterator[Client]:
    async for started in serve(store, upstream_timeout=2):
        yield started


def message(n: int = 1, sender: str = SENDER) -> bytes:
    return (
        f"From: {sender}\r\nTo: bob@example.com\r\nSubject: scan {n}\r\n"
        f"Message-ID: <scan-{n}@corp.example>\r\n\r\n.hidden dot\r\nPage {n}.\r\n"
    ).encode()


async def test_the_transaction_is_relayed_and_answered_with_the_upstreams_replies(
    client: Client, toy: Toy
):
    data = message()

    def send(smtp: smtplib.SMTP) -> list[tuple[int, bytes]]:
        return [
            smtp.mail(SENDER, ["BODY=8BITMIME", f"SIZE={len(data)}"]),
            smtp.rcpt("bob@example.com"),
            smtp.rcpt("nobody@example.com"),
            smtp.data(data),
        ]

    replies = await client.run(send)
    assert replies == [
        (250, b"2.1.0 OK"),  # the relay's: the upstream's reply to MAIL comes with RCPT
        (250, b"2.1.5 ok"),
        (550, b"5.1.1 toy: no such user"),
        (250, b"2.0.0 toy queued as 1"),
    ]
    assert toy.commands[2:6] == [  # after EHLO and AUTH
        f"MAIL FROM:<{SENDER}> BODY=8BITMIME SIZE={len(data)}".encode(),
        b"RCPT TO:<bob@example.com>",
        b"RCPT TO:<nobody@example.com>",
        b"DATA",
    ]
    assert toy.messages == [data.replace(b"\r\n.hidden", b"\r\n..hidden") + b".\r\n"]
    snapshot = client.relay.counters.snapshot()
    assert snapshot.messages == {("passthrough", "relayed"): 1}
    assert snapshot.logins == {("smtp", "ok"): 1}
    await closed(client.relay)


async def closed(relay: SmtpRelay) -> None:
    """Wait until the relay has seen every connection end (and counted it)."""
    deadline = time.monotonic() + 5
    while relay.counters.snapshot().connections.get("smtp", 0):
        assert time.monotonic() < deadline, relay.counters.snapshot()
        await asyncio.sleep(0.01)


async def test_a_session_dropped_while_idle_is_replaced_before_the_client_hears_anything(
    client: Client, toy: Toy
):
    await client.run(lambda smtp: smtp.sendmail(SENDER, ["bob@example.com"], message(1)))
    await asyncio.sleep(0.05)  # the session goes back to the pool after QUIT
    upstreams = client.relay.upstreams
    assert upstreams is not None
    key = upstreams.key(client.relay.handler.store.get_mailbox("scans"))
    pooled = upstreams.pool.take(key)
    assert pooled is not None
    assert nodelay(pooled.transport)  # no Nagle delay on the way up
    upstreams.give_back(pooled)
    toy.misbehave[(1, b"MAIL")] = "drop"  # looks alive in the pool, breaks at MAIL
    refused = await client.run(lambda smtp: smtp.sendmail(SENDER, ["bob@example.com"], message(2)))
    assert refused == {}
    assert toy.logins == 2
    assert len(toy.messages) == 2
    toy.drop_idle()  # closed by the server while idle: not even tried
    await asyncio.sleep(0.05)
    await client.run(lambda smtp: smtp.sendmail(SENDER, ["bob@example.com"], message(3)))
    assert toy.logins == 3
    assert len(toy.messages) == 3


async def test_an_upstream_lost_mid_transaction_is_451_and_the_next_mail_goes(
    client: Client, toy: Toy
):
    toy.misbehave[(1, b"END")] = "drop"

    def send(smtp: smtplib.SMTP) -> tuple[tuple[int, bytes], dict[str, Any]]:
        smtp.mail(SENDER)
        smtp.rcpt("bob@example.com")
        lost = smtp.data(message(1))
        return lost, smtp.sendmail(SENDER, ["bob@example.com"], message(2))

    (code, text), second = await client.run(send)
    assert code == 451
    assert text.startswith(b"4.4.1 Upstream for scans unavailable (")
    assert second == {}
    assert toy.logins == 2
    counted = client.relay.counters.snapshot().messages
    assert counted == {("passthrough", "failed"): 1, ("passthrough", "relayed"): 1}


@pytest.mark.parametrize("verb", [b"RCPT", b"DATA", b"END"])
async def test_an_upstream_that_stops_answering_is_451_within_the_timeout(
    store: SqlStore, toy: Toy, verb: bytes
):
    toy.misbehave[(1, verb)] = "hang"
    async for client in serve(store, upstream_timeout=0.5, data_timeout=0.5):

        def send(smtp: smtplib.SMTP) -> tuple[int, bytes]:
            smtp.mail(SENDER)
            code, text = smtp.rcpt("bob@example.com")
            if code != 250:
                return code, text
            return smtp.data(message())

        started = time.monotonic()
        code, text = await client.run(send)
        assert time.monotonic() - started < 5
    assert code == 451
    assert b"4.4.1 Upstream for scans unavailable" in text


async def test_bare_line_feeds_cannot_smuggle_a_second_message(client: Client, toy: Toy):
    # "\n.\n" and "\n.\r\n" end the data for some servers; neither may reach one raw
    smuggled = (
        f"From: {SENDER}\r\nSubject: hi\r\n\r\nhello\n.\nMAIL FROM:<ceo@corp.example>\n"
        "RCPT TO:<bob@example.com>\nDATA\nFrom: ceo@corp.example\n\nwire the money\n.\r\n"
        "QUIT\r\n.\r\n"
    ).encode()

    def send(smtp: smtplib.SMTP) -> list[tuple[int, bytes]]:
        smtp.mail(SENDER)
        smtp.rcpt("bob@example.com")
        smtp.putcmd("DATA")
        assert smtp.getreply()[0] == 354
        smtp.send(smuggled)
        return [smtp.getreply(), smtp.noop()]

    replies = await client.run(send)
    assert replies == [(250, b"2.0.0 toy queued as 1"), (250, b"OK")]
    [got] = toy.messages  # one message, the attempt inside it as text
    assert b"\r\n..\r\nMAIL FROM:<ceo@corp.example>\r\n" in got
    assert got.endswith(b"wire the money\r\n..\r\nQUIT\r\n.\r\n")
    assert [c for c in toy.commands if c.startswith(b"MAIL")] == [f"MAIL FROM:<{SENDER}>".encode()]


async def test_the_relay_answers_data_at_once_and_refuses_a_foreign_from(client: Client, toy: Toy):
    def send(smtp: smtplib.SMTP) -> list[tuple[int, bytes]]:
        smtp.mail(SENDER)
        smtp.rcpt("bob@example.com")
        forged = smtp.data(message(1, sender="ceo@corp.example"))
        smtp.mail(SENDER)
        no_rcpt = smtp.docmd("DATA")
        return [forged, no_rcpt]

    forged, no_rcpt = await client.run(send)
    assert forged[0] == 553
    assert b"<ceo@corp.example> is not a sender scanner may use" in forged[1]
    assert no_rcpt == (554, b"5.5.1 Error: no valid recipients")
    assert toy.messages == []  # the forged message never went up


async def test_a_mailbox_that_cannot_do_passthrough_is_told_at_mail(store: SqlStore):
    async for client in serve(store, tokens=None):  # e.g. a relay without a token service
        code, text = await client.run(lambda smtp: smtp.mail(SENDER))
    assert code == 554
    assert text.startswith(b"5.3.5 Passthrough is not possible: this relay has no token service")
    assert b"mailoauth relay-user set scanner --mode queue" in text


async def test_a_client_gone_in_the_middle_of_data_leaves_nothing_upstream(
    client: Client, toy: Toy
):
    def half(smtp: smtplib.SMTP) -> None:
        smtp.mail(SENDER)
        smtp.rcpt("bob@example.com")
        smtp.putcmd("DATA")
        assert smtp.getreply()[0] == 354
        smtp.send(message(1)[:60])  # the headers, part of the body, then gone
        smtp.close()

    await client.run(half)
    await closed(client.relay)
    await asyncio.sleep(0.1)
    assert toy.messages == []  # never ended: nothing to deliver
    assert b"RSET" not in b"".join(toy.commands)  # and nothing written into the data
    assert client.relay.upstreams is not None
    assert client.relay.upstreams.stats().idle == 0  # that session is not reused
    assert (
        await client.run(lambda smtp: smtp.sendmail(SENDER, ["bob@example.com"], message(2))) == {}
    )
    assert len(toy.messages) == 1


async def test_an_upstream_login_refused_for_now_is_451_not_a_token_problem(
    client: Client, toy: Toy
):
    toy.misbehave[(1, b"BUSY")] = toy.misbehave[(2, b"BUSY")] = "yes"

    def send(smtp: smtplib.SMTP) -> list[tuple[int, bytes]]:
        return [smtp.mail(SENDER), smtp.mail(SENDER)]

    busy, works = await client.run(send)  # the local login went through (AUTH, then MAIL)
    assert busy[0] == 451
    assert busy[1].startswith(b"4.4.1 Upstream for scans unavailable (")
    assert b"454 4.7.0 toy: too many connections" in busy[1]
    assert works == (250, b"2.1.0 OK")  # the third login went through
    assert client.relay.counters.snapshot().logins == {("smtp", "ok"): 1}
