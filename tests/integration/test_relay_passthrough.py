"""The SMTP relay in PASSTHROUGH mode against the real Dovecot submission service: an
application logs in with its relay password (stdlib smtplib), the relay logs in upstream
with the mailbox's OAuth2 token (password grant at the test authorization server,
STARTTLS with the fixture's CA) and relays the transaction live. What arrives in BOB's
Maildir is the client's message byte for byte; Dovecot's own replies reach the client;
upstream sessions are shared by the transactions of a session and pooled between
one-connection-per-mail clients; an unreachable upstream is a 451, a refused token a 454.

The relay runs in the test's event loop (counters and pool visible), the clients in
threads."""

from __future__ import annotations

import asyncio
import email
import json
import logging
import smtplib
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mailoauth.config import RelayTls
from mailoauth.mail.connect import http_client
from mailoauth.models import Grant, Mailbox, OutgoingSettings
from mailoauth.oauth.tokens import TokenService
from mailoauth.providers import GrantType
from mailoauth.relay import RelayMode, SmtpRelay, add_user
from mailoauth.secret import Secret
from mailoauth.store import SqlStore
from tests.cli import Cli
from tests.mail_setup import apply_password_mailboxes
from tests.net import free_port
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import ALICE, BOB, PASSWORD, Dovecot
from tests.stores import open_sqlite

pytestmark = pytest.mark.integration

APP = "scanner"
GARBAGE = "not-a-token-the-server-ever-issued"


@dataclass
class Relay:
    relay: SmtpRelay
    store: SqlStore
    password: str

    @property
    def port(self) -> int:
        return self.relay.port

    def stats(self) -> Any:
        assert self.relay.upstreams is not None
        return self.relay.upstreams.stats()

    async def client(self, work: Callable[[smtplib.SMTP], Any], *, login: bool = True) -> Any:
        """``work`` with an smtplib client (EHLO'd, logged in) in a thread."""

        def run() -> Any:
            with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as smtp:
                smtp.ehlo("scanner.example")
                if login:
                    smtp.login(APP, self.password)
                return work(smtp)

        return await asyncio.to_thread(run)


def submission(dovecot: Dovecot, port: int | None = None) -> OutgoingSettings:
    return OutgoingSettings(
        host=dovecot.host, port=port or dovecot.ports.submission, security="starttls"
    )


def open_test_store(
    tmp_path: Path, auth_server: AuthServer, outgoing: OutgoingSettings
) -> SqlStore:
    auth_server.add_mail_client()
    for user in (ALICE, BOB):
        auth_server.add_user(user, PASSWORD)
    home = tmp_path / "home"
    store = open_sqlite(home)
    store.put_provider(auth_server.mail_provider())
    store.put_mailbox(
        Mailbox(
            name="alice",
            provider="test",
            login=ALICE,
            grant=GrantType.PASSWORD,
            password=Secret(PASSWORD),
            addresses=(ALICE,),
            outgoing=outgoing,
        )
    )
    return store


async def running(store: SqlStore, dovecot: Dovecot, **options: Any) -> AsyncIterator[Relay]:
    _, password = add_user(store, APP, "alice", mode=RelayMode.PASSTHROUGH)
    async with http_client(str(dovecot.ca_path)) as http:
        relay = SmtpRelay(
            store,
            "127.0.0.1",
            free_port(),
            tokens=TokenService(store, http),
            ca_file=str(dovecot.ca_path),
            **options,
        )
        await relay.start()
        try:
            yield Relay(relay, store, password.reveal())
        finally:
            await relay.stop()


@pytest.fixture
async def relay(tmp_path: Path, auth_server: AuthServer, dovecot: Dovecot) -> AsyncIterator[Relay]:
    store = open_test_store(tmp_path, auth_server, submission(dovecot))
    try:
        async for started in running(store, dovecot, size_limit=10**12):
            yield started
    finally:
        store.close()


def message(message_id: str, body: bytes = b"Page 1 of 1.\r\n") -> bytes:
    return (
        f"From: Scanner <{ALICE}>\r\nTo: {BOB}\r\nSubject: scan {message_id}\r\n"
        f"Message-ID: <{message_id}@scanner.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    ).encode() + body


def delivered(dovecot: Dovecot, count: int, seconds: float = 10) -> list[bytes]:
    """The raw files in BOB's Maildir (CRLF, as sent; Dovecot stores LF), oldest first."""
    deadline = time.monotonic() + seconds
    while True:
        files = sorted(
            (path for sub in ("new", "cur") for path in (dovecot.mail_dir(BOB) / sub).glob("*")),
            key=lambda path: path.stat().st_mtime_ns,
        )
        if len(files) >= count or time.monotonic() > deadline:
            return [path.read_bytes().replace(b"\n", b"\r\n") for path in files]
        time.sleep(0.05)


async def test_a_message_arrives_byte_for_byte_with_dovecots_reply(
    relay: Relay, dovecot: Dovecot, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.DEBUG)
    # a line that is a single dot, lines starting with dots (dot-stuffing both ways),
    # 8-bit text, a folded header, trailing spaces: what re-serialising would change
    body = (
        b".\r\n..two dots\r\n.leading dot\r\nGr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln  \r\n"
        b"X-Not-A-Header: in the body\r\n" + (b"0123456789" * 10 + b"\r\n") * 30
    )
    sent = message("byte-exact", body).replace(
        b"Subject: scan byte-exact", b"Subject: scan byte-exact,\r\n\tfolded  on purpose"
    )

    def send(smtp: smtplib.SMTP) -> tuple[int, bytes]:
        smtp.mail(ALICE, ["BODY=8BITMIME", f"SIZE={len(sent)}"])
        smtp.rcpt(BOB)
        return smtp.data(sent)

    code, reply = await relay.client(send)
    assert (code, reply) == (250, b"2.0.0 2.0.0 Delivered over LMTP")  # Dovecot's words
    [got] = delivered(dovecot, 1)
    assert got.endswith(sent)  # after the headers Dovecot adds (Return-Path, Received)
    assert email.message_from_bytes(got)["Message-ID"] == "<byte-exact@scanner.example>"
    snapshot = relay.relay.counters.snapshot()
    assert snapshot.messages == {("passthrough", "relayed"): 1}
    assert snapshot.logins == {("smtp", "ok"): 1}
    grant = relay.store.get_grant("alice")
    assert grant is not None
    assert grant.access_token is not None
    for secret in (relay.password, grant.access_token.reveal(), PASSWORD):
        assert secret not in caplog.text
    assert "scanner's message" in caplog.text


async def test_transactions_of_a_session_share_one_upstream_login(relay: Relay, dovecot: Dovecot):
    def two(smtp: smtplib.SMTP) -> list[dict[str, tuple[int, bytes]]]:
        first = smtp.sendmail(ALICE, [BOB], message("first"))
        smtp.rset()  # relayed; the session stays usable
        second = smtp.sendmail(ALICE, [BOB], message("second"))
        return [first, second]

    assert await relay.client(two) == [{}, {}]
    assert relay.stats().logins == 1
    ids = sorted(email.message_from_bytes(m)["Message-ID"] for m in delivered(dovecot, 2))
    assert ids == ["<first@scanner.example>", "<second@scanner.example>"]


async def test_one_connection_per_mail_reuses_pooled_upstream_sessions(
    relay: Relay, dovecot: Dovecot
):
    for n in range(3):
        await relay.client(lambda smtp, n=n: smtp.sendmail(ALICE, [BOB], message(f"s{n}")))
    stats = relay.stats()
    assert (stats.logins, stats.reused) == (1, 2)
    assert len(delivered(dovecot, 3)) == 3
    assert relay.relay.counters.snapshot().connections == {"smtp": 0}
    # two clients at once need two upstream sessions; both go back to the pool
    await asyncio.gather(
        *(
            relay.client(lambda smtp, n=n: smtp.sendmail(ALICE, [BOB], message(f"c{n}")))
            for n in range(2)
        )
    )
    await asyncio.sleep(0.1)  # the second session's hand-back runs after its QUIT
    stats = relay.stats()
    assert stats.logins + stats.reused == 5
    assert stats.idle == stats.logins <= 2


async def test_dovecots_refusals_reach_the_client_with_their_codes(relay: Relay, dovecot: Dovecot):
    def refused(smtp: smtplib.SMTP) -> list[tuple[int, bytes]]:
        mail = smtp.mail(ALICE, ["SIZE=999999999999"])  # over Dovecot's limit, not ours
        size = smtp.rcpt(BOB)  # the relay answered MAIL; Dovecot's answer comes with RCPT
        smtp.putcmd("DATA")
        nothing = smtp.getreply()
        smtp.rset()
        smtp.mail(ALICE)
        literal = smtp.rcpt("bob@[1.2.3]")
        good = smtp.rcpt(BOB)
        return [mail, size, nothing, literal, good, smtp.data(message("partly"))]

    mail, size, nothing, literal, good, data = await relay.client(refused)
    assert mail == (250, b"2.1.0 OK")
    assert size == (552, b"5.2.3 Message size exceeds administrative limit")
    assert nothing == (554, b"5.5.1 Error: no valid recipients")
    assert literal == (501, b"5.5.4 Invalid TO: Invalid IPv4 address literal")
    assert good[0] == 250
    assert data[0] == 250  # for BOB, whom Dovecot accepted
    assert len(delivered(dovecot, 1)) == 1


async def test_the_sender_policy_still_holds_in_passthrough(relay: Relay, dovecot: Dovecot):
    forged = message("forged").replace(f"From: Scanner <{ALICE}>".encode(), f"From: {BOB}".encode())

    def send(smtp: smtplib.SMTP) -> list[tuple[int, bytes]]:
        envelope = smtp.mail(BOB)
        smtp.rset()
        smtp.mail(ALICE)
        smtp.rcpt(BOB)
        header = smtp.data(forged)
        smtp.sendmail(ALICE, [BOB], message("after"))  # the session goes on
        return [envelope, header]

    envelope, header = await relay.client(send)
    assert envelope[0] == 553
    assert header[0] == 553
    assert f"<{BOB}> is not a sender {APP} may use".encode() in header[1]
    [got] = delivered(dovecot, 1)  # only the allowed one, on a new upstream session
    assert email.message_from_bytes(got)["Message-ID"] == "<after@scanner.example>"


async def test_an_unreachable_upstream_is_451_and_nothing_hangs(
    tmp_path: Path, auth_server: AuthServer, dovecot: Dovecot
):
    closed = free_port()
    store = open_test_store(tmp_path, auth_server, submission(dovecot, closed))
    try:
        async for relay in running(store, dovecot, upstream_timeout=5):

            def send(smtp: smtplib.SMTP) -> tuple[int, bytes]:
                return smtp.mail(ALICE)

            started = time.monotonic()
            code, reply = await relay.client(send)  # the local login itself succeeds
            assert time.monotonic() - started < 10
    finally:
        store.close()
    assert code == 451
    text = reply.decode()
    assert text.startswith("4.4.1 Upstream for alice unavailable (")
    assert f"127.0.0.1:{closed}" in text
    assert "try again later" in text


async def test_a_token_the_upstream_refuses_after_the_refresh_is_454_at_login(
    tmp_path: Path, auth_server: AuthServer, dovecot: Dovecot
):
    store = open_test_store(tmp_path, auth_server, submission(dovecot))
    # a token Dovecot refuses (revoked early, as far as mailoauth can tell valid for an
    # hour), and a refresh (password grant) the authorization server refuses
    expires = datetime.now(UTC) + timedelta(hours=1)
    store.put_grant(Grant(mailbox="alice", access_token=Secret(GARBAGE), expires_at=expires))
    auth_server.add_user(ALICE, "changed-password")
    try:
        async for relay in running(store, dovecot):

            def login(smtp: smtplib.SMTP, password: str = relay.password) -> None:
                smtp.user, smtp.password = APP, password
                smtp.auth("PLAIN", smtp.auth_plain)  # login() would try LOGIN next

            with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                await relay.client(login, login=False)
            counters = relay.relay.counters.snapshot()
    finally:
        store.close()
    assert refused.value.smtp_code == 454
    text = refused.value.smtp_error.decode()
    assert text.startswith("4.7.0 The upstream refused mailbox alice's login")
    assert "mailoauth authorize alice" in text
    assert PASSWORD not in text
    assert GARBAGE not in text
    assert counters.logins == {("smtp", "upstream"): 1}


def test_relay_user_modes_on_the_command_line(
    cli: Cli, auth_server: AuthServer, dovecot: Dovecot, tmp_path: Path
):
    outgoing = f"{{ host = '127.0.0.1', port = {dovecot.ports.submission} }}"
    apply_password_mailboxes(
        cli, auth_server, dovecot, tmp_path, {"alice": f'login = "{ALICE}"\noutgoing = {outgoing}'}
    )
    added = cli.ok("relay-user", "add", APP, "--mailbox", "alice", "--mode", "passthrough")
    assert added.startswith(f"login:    {APP}\npassword: ")
    listing = cli.ok("relay-user", "list", env={"COLUMNS": "200"})
    assert "passthrough" in listing
    assert cli.ok("relay-user", "set", APP, "--mode", "queue") == f"relay user {APP}: mode queue\n"
    [user] = json.loads(cli.ok("relay-user", "list", "--json"))
    assert (user["name"], user["mode"]) == (APP, "queue")
    problem = cli.fails("relay-user", "set", APP, "--mode", "live")
    assert problem == "--mode: 'live' is not a mode; use queue or passthrough"


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit"])
async def test_a_login_over_tls_is_handed_over_and_relayed_to_dovecot(
    tmp_path: Path,
    auth_server: AuthServer,
    dovecot: Dovecot,
    pem: tuple[Path, Path],
    client_context: ssl.SSLContext,
    implicit: bool,
):
    """After STARTTLS (RFC 3207) or on an implicit-TLS listener (RFC 8314), the encrypted
    connection is handed over after the 235 like a plain one; the relay counts it closed
    when the client leaves."""
    store = open_test_store(tmp_path, auth_server, submission(dovecot))
    tls = RelayTls(*pem, implicit=implicit)
    try:
        async for started in running(store, dovecot, tls=tls, loopback=False):

            def send(
                port: int = started.port, password: str = started.password
            ) -> tuple[dict[str, Any], tuple[int, bytes], tuple[int, bytes]]:
                if implicit:
                    smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                        "127.0.0.1", port, context=client_context, timeout=30
                    )
                else:
                    smtp = smtplib.SMTP("127.0.0.1", port, timeout=30)
                    smtp.starttls(context=client_context)
                with smtp:
                    smtp.login(APP, password)
                    refused = smtp.sendmail(ALICE, [BOB], message("over-tls"))
                    return refused, smtp.ehlo(), smtp.noop()  # the relay's own, after it

            refused, again, noop = await asyncio.to_thread(send)
            assert refused == {}
            assert again[0] == 250
            assert b"SIZE" in again[1]
            assert noop == (250, b"OK")
            [got] = delivered(dovecot, 1)
            assert email.message_from_bytes(got)["Message-ID"] == "<over-tls@scanner.example>"
            counters = started.relay.counters
            assert counters.snapshot().messages == {("passthrough", "relayed"): 1}
            deadline = time.monotonic() + 5
            while counters.snapshot().connections.get("smtp", 0):
                assert time.monotonic() < deadline, counters.snapshot()
                await asyncio.sleep(0.02)
    finally:
        store.close()
