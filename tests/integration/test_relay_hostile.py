"""Hostile and broken clients against the real `mailoauth relay` (one process for the
module): garbage and NUL bytes, a 1 MB command line, thousands of idle connections, DATA
past the advertised SIZE, MAIL before AUTH, and a source guessing passwords. Each gets a
clean SMTP refusal (or a clean close), and after each another client still logs in and
its message reaches Dovecot — the relay keeps serving.

Sources: Linux routes all of 127.0.0.0/8 to loopback, so a client bound to 127.0.0.2 is
a different source address for the relay's per-address lockout than one on 127.0.0.3.
"""

from __future__ import annotations

import random
import re
import selectors
import smtplib
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.cli import Cli
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import ALICE, BOB, Dovecot
from tests.relay_helpers import (
    HOST,
    Client,
    RelayProcess,
    note,
    raise_fd_limit,
    relay_mailbox,
    relay_port,
    running,
    wait_for_inbox,
)

pytestmark = pytest.mark.integration

IDLE = 2000  # idle connections held open at once
SIZE = 35 * 1024 * 1024  # the relay's advertised SIZE (mailoauth.relay.DEFAULT_SIZE_LIMIT)


@dataclass
class Relay:
    process: RelayProcess
    client: Client
    dovecot: Dovecot
    fd_limit: int

    def still_serves(self, message_id: str) -> None:
        """Another client logs in and sends; the message arrives."""
        assert self.process.process is not None
        assert self.process.process.poll() is None, self.process.log_text()
        code, reply = self.client.submit(note(message_id))
        assert code == 250, reply
        assert reply.startswith("2.0.0 queued as ")
        found = wait_for_inbox(self.dovecot, {message_id})
        assert message_id in {m for m, _ in found}


@pytest.fixture(scope="module")
def relay(
    auth_server_process: AuthServer,
    dovecot_process: Dovecot,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Relay]:
    fd_limit = raise_fd_limit()  # before the relay starts: it inherits the limit
    tmp = tmp_path_factory.mktemp("hostile")
    auth_server_process.start()
    auth_server_process.reset()
    dovecot_process.begin_test(auth_server_process)
    cli = Cli(home=tmp / "home")
    password = relay_mailbox(cli, auth_server_process, dovecot_process, tmp)
    with running(RelayProcess(cli, tmp / "relay.log")) as process:
        yield Relay(process, Client(relay_port(cli), password), dovecot_process, fd_limit)
    assert password not in process.log_text()


class Raw:
    """A client that writes bytes and reads reply lines, nothing more."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=20)
        self.io = self.sock.makefile("rb")
        assert self.io.readline().startswith(b"220 ")

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> str:
        """One whole reply (continuation lines joined), e.g. ``"250 OK"``."""
        lines = []
        while True:
            line = self.io.readline()
            assert line, "the relay closed the connection"
            lines.append(line.decode().rstrip("\r\n"))
            if line[3:4] != b"-":
                return "\n".join(lines)

    def command(self, line: bytes) -> str:
        self.send(line + b"\r\n")
        return self.reply()

    def closed(self) -> bool:
        """Whether the relay has closed the connection (EOF, not a timeout)."""
        return self.io.read() == b""

    def close(self) -> None:
        self.io.close()
        self.sock.close()


def test_garbage_and_nul_bytes_are_refused_and_the_connection_closed(relay: Relay) -> None:
    raw = Raw(relay.client.port)
    try:
        assert raw.command(b"\x00\x01\x02\xff\xfe") == "500 Error: bad syntax"  # not ASCII
        assert raw.command(b"EHLO \xff\xfe\x00host") == "500 Error: strict ASCII mode"
        assert raw.command(b"") == "500 Error: bad syntax"
        rng = random.Random(1)  # noqa: S311 - replayable garbage
        for _ in range(50):  # binary lines: each refused, the session goes on
            garbage = rng.randbytes(rng.randrange(1, 300)).replace(b"\n", b"").replace(b"\r", b"")
            assert raw.command(b"\x80" + garbage) == "500 Error: bad syntax"
        assert raw.command(b"NOOP") == "250 OK"
        assert raw.command(b"EHLO app.example").startswith("250-")
        # Garbage inside AUTH: refused, and the session is back to "not logged in".
        assert raw.command(b"AUTH LOGIN") == "334 VXNlcm5hbWU6"  # "Username:"
        assert raw.command(b"\xff\x00 not base64 \x80") == "501 5.5.2 Can't decode base64"
        assert raw.command(b"AUTH PLAIN") == "334 "
        assert raw.command(b"*") == "501 5.7.0 Auth aborted"
        assert raw.command(b"AUTH PLAIN AGFwcABcAA==\x00") == (
            "501 5.5.2 the client's AUTH data is not valid base64"
        )
        assert raw.command(b"MAIL FROM:<alice@example.com>").startswith("530 ")
        for _ in range(4):  # ASCII, with a NUL: unknown commands
            assert (
                raw.command(b"MAIL\x00FROM:<x>")
                == '500 Error: command "MAIL\x00FROM:<X>" not recognized'
            )
        # The fifth unknown command ends the session (aiosmtpd's budget), cleanly.
        assert raw.command(b"\x00") == "502 5.5.1 Too many unrecognized commands, goodbye."
        assert raw.closed()
    finally:
        raw.close()
    relay.still_serves("<after-garbage@app.example>")


def test_nul_and_8bit_bytes_in_a_message_are_delivered_byte_for_byte(relay: Relay) -> None:
    body = b"binary \x00\x01\xfe\xff part"
    data = note("<nul-body@app.example>").replace(b"You have a new voicemail.", body)
    code, reply = relay.client.submit(data)
    assert code == 250, reply
    wait_for_inbox(relay.dovecot, {"<nul-body@app.example>"})
    (delivered,) = (
        path.read_bytes()
        for sub in ("new", "cur")
        for path in (relay.dovecot.mail_dir(BOB) / sub).iterdir()
        if b"<nul-body@app.example>" in path.read_bytes()
    )
    assert delivered.endswith(b"\n\n" + body + b"\n")  # Dovecot stores LF line ends
    relay.still_serves("<after-nul-body@app.example>")


def test_a_command_line_of_one_megabyte_gets_500_and_the_session_goes_on(relay: Relay) -> None:
    raw = Raw(relay.client.port)
    try:
        assert raw.command(b"EHLO " + b"a" * (1 << 20)) == "500 Command line too long"
        assert raw.command(b"AUTH PLAIN " + b"QUFB" * (1 << 18)) == "500 Command line too long"
        assert raw.command(b"NOOP") == "250 OK"
        assert raw.command(b"QUIT").startswith("221 ")
    finally:
        raw.close()
    relay.still_serves("<after-long-line@app.example>")


def test_thousands_of_idle_connections_do_not_stop_another_client(relay: Relay) -> None:
    if relay.fd_limit < IDLE + 1024:
        pytest.skip(
            f"RLIMIT_NOFILE hard limit {relay.fd_limit} < {IDLE + 1024}: raise it "
            f"(ulimit -Hn) for the relay and this test to hold {IDLE} connections"
        )
    idle: list[socket.socket] = []
    try:
        for _ in range(IDLE):  # each one greeted before the next: the relay holds them all
            sock = socket.create_connection((HOST, relay.client.port), timeout=20)
            idle.append(sock)
            greeting = sock.recv(256)
            assert re.fullmatch(rb"220 [^\r\n]*\r\n", greeting), greeting
        started = time.monotonic()
        relay.still_serves("<among-idle@app.example>")
        assert time.monotonic() - started < 10
        for sock in idle[:: IDLE // 20]:  # and the idle ones are still being served
            sock.sendall(b"NOOP\r\n")
            assert sock.recv(64).startswith(b"250 ")
    finally:
        for sock in idle:
            sock.close()
    relay.still_serves("<after-idle@app.example>")


def test_a_burst_of_connects_is_not_dropped_by_the_listen_backlog(relay: Relay) -> None:
    burst = 1000
    if relay.fd_limit < burst + 1024:
        pytest.skip(f"RLIMIT_NOFILE hard limit {relay.fd_limit} < {burst + 1024}")
    selector = selectors.DefaultSelector()
    pending: list[socket.socket] = []
    try:
        for _ in range(burst):  # all at once, as many applications starting together
            sock = socket.socket()
            sock.setblocking(False)
            pending.append(sock)
            sock.connect_ex((HOST, relay.client.port))
            selector.register(sock, selectors.EVENT_WRITE)
        connected = 0
        deadline = time.monotonic() + 0.9  # a dropped SYN is sent again after 1 s
        while connected < burst and (left := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(left):
                selector.unregister(key.fileobj)
                assert isinstance(key.fileobj, socket.socket)
                assert key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                connected += 1
        assert connected == burst, f"{burst - connected} of {burst} connects waited for a retry"
    finally:
        selector.close()
        for sock in pending:
            sock.close()


def test_data_past_the_advertised_size_gets_552_and_the_session_goes_on(relay: Relay) -> None:
    line = b"x" * 998 + b"\r\n"
    too_big = note("<too-big@app.example>") + line * (SIZE // len(line) + 2)
    with relay.client.connect() as smtp:
        assert smtp.esmtp_features["size"] == str(SIZE)
        smtp.login(relay.client.login, relay.client.password)
        assert smtp.mail(ALICE)[0] == 250  # no SIZE= given: only DATA can tell
        assert smtp.rcpt(BOB)[0] == 250
        code, reply = smtp.data(too_big)
        assert (code, reply) == (552, b"Error: Too much mail data")
        assert smtp.noop()[0] == 250  # the same session sends a good one next
        smtp.sendmail(ALICE, [BOB], note("<after-too-big@app.example>"))
    found = wait_for_inbox(relay.dovecot, {"<after-too-big@app.example>"})
    assert "<too-big@app.example>" not in {m for m, _ in found}


def test_mail_before_auth_gets_530_and_the_session_can_still_log_in(relay: Relay) -> None:
    with relay.client.connect() as smtp:
        code, reply = smtp.mail(ALICE)
        assert (code, reply) == (
            530,
            b"5.7.0 Authentication required: log in with your relay user first",
        )
        assert smtp.rcpt(BOB)[0] == 503  # no transaction was started
        smtp.login(relay.client.login, relay.client.password)
        assert smtp.sendmail(ALICE, [BOB], note("<after-530@app.example>")) == {}
    wait_for_inbox(relay.dovecot, {"<after-530@app.example>"})


def test_a_source_guessing_passwords_is_locked_out_and_others_are_not(relay: Relay) -> None:
    guesser = Client(relay.client.port, "wrong password", source="127.0.0.2")
    replies = []
    with guesser.connect() as smtp:
        smtp.user, smtp.password = guesser.login, guesser.password
        for _ in range(10):  # smtp.login() would try PLAIN and LOGIN: two failures a call
            with pytest.raises(smtplib.SMTPAuthenticationError) as refused:
                smtp.auth("PLAIN", smtp.auth_plain)
            error = refused.value.smtp_error
            text = error.decode() if isinstance(error, bytes) else error
            replies.append((refused.value.smtp_code, text))
    invalid = (535, "5.7.8 Authentication credentials invalid")
    assert replies[:9] == [invalid] * 9
    assert replies[9] == (454, "4.7.0 Too many failed logins from your address; try again in 300 s")
    # The right password from the locked-out address: still refused, before any check.
    same_source = Client(relay.client.port, relay.client.password, source="127.0.0.2")
    with pytest.raises(smtplib.SMTPAuthenticationError) as locked:
        same_source.submit(note("<locked@app.example>"))
    assert locked.value.smtp_code == 454
    # Another address is not affected.
    other = Client(relay.client.port, relay.client.password, source="127.0.0.3")
    assert other.submit(note("<other-source@app.example>"))[0] == 250
    log = relay.process.log_text()
    assert "relay: failed SMTP login as 'app' from 127.0.0.2" in log
    assert "app logged in from 127.0.0.3" in log
    relay.still_serves("<after-lockout@app.example>")
