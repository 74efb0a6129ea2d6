"""The IMAP and POP3 relays in-process against the real Dovecot (mailbox ``office`` over
IMAPS, ``popbox`` over POP3 with STLS, ALICE's password grant at the test authorization
server), spoken to by Python's imaplib and poplib and by raw sockets: LOGIN with atoms and
literals, AUTHENTICATE PLAIN, USER/PASS, AUTH PLAIN, the capabilities a client sees, a
delivered message fetched and retrieved, wrong passwords, the lockout, a relay user
without the protocol, a mailbox that fetches otherwise, a revoked grant, an unreachable
mail server, and bad input — each followed by a client that logs in fine."""

from __future__ import annotations

import base64
import imaplib
import poplib
import re
import socket

import pytest

from mailoauth.models import IncomingSettings
from mailoauth.relay import FailureLimiter, ImapRelay
from tests.net import free_port
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import ALICE
from tests.relay_fetch_setup import (
    IMAP,
    POP3,
    Relay,
    authorized_mailbox,
    blocking,
    listener,
    message,
    relay,
)

pytestmark = pytest.mark.integration

__all__ = ["relay"]  # the fixture, imported for the tests here


def imap_client(relay: Relay, port: int | None = None) -> imaplib.IMAP4:
    return imaplib.IMAP4("127.0.0.1", port or relay.imap.port, timeout=15)


def converse(sock: socket.socket, *lines: bytes, until: bytes) -> bytes:
    """Send ``lines``, then read until ``until`` has arrived (or the relay closed)."""
    for line in lines:
        sock.sendall(line)
    got = b""
    while until not in got:
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def imap_refusal(relay: Relay, user: str, password: str, port: int | None = None) -> str:
    with imap_client(relay, port) as imap:
        with pytest.raises(imaplib.IMAP4.error) as refused:
            imap.login(user, password)
        reason = refused.value.args[0]
        return reason.decode() if isinstance(reason, bytes) else str(reason)


# -- IMAP ---------------------------------------------------------------------------------


async def test_imaplib_logs_in_selects_fetches_and_logs_out(relay: Relay):
    password = relay.user("mua", "office", IMAP)
    relay.dovecot.deliver(ALICE, message("through the relay"))

    def work() -> tuple[tuple[str, ...], list[str], list[str], bytes, str]:
        with imap_client(relay) as imap:
            before = imap.capabilities
            assert imap.login("mua", password)[0] == "OK"
            _, (code,) = imap.response("CAPABILITY")  # the OK's [CAPABILITY ...]
            after = code.decode().split()
            asked = imap.capability()[1][0].decode().split()  # Dovecot's own answer
            _, count = imap.select("INBOX")
            typ, fetched = imap.fetch("1", "(BODY.PEEK[])")
            assert typ == "OK"
            assert isinstance(fetched[0], tuple)
            return before, after, asked, fetched[0][1], count[0].decode()

    before, after, asked, body, count = await blocking(work)
    assert before == ("IMAP4REV1", "LITERAL+", "SASL-IR", "ID", "AUTH=PLAIN")  # imaplib: upper
    assert after[0] == "IMAP4rev1"
    assert "IDLE" in after
    assert "MOVE" in after
    assert not [name for name in after if name.startswith("AUTH=") or name == "SASL-IR"]
    assert set(after) <= {name.upper() for name in asked} | {"IMAP4rev1"}
    assert count == "1"
    assert body.endswith(message("through the relay"))  # after Return-Path, Delivered-To
    assert relay.counters.snapshot().logins == {("imap", "ok"): 1}
    assert f"imap-login: Info: Login: user=<{ALICE}>" in relay.dovecot.log_text()


async def test_login_with_literals_and_authenticate_plain_with_a_pipelined_command(relay: Relay):
    password = relay.user("mua", "office", IMAP).encode()
    plain = base64.b64encode(b"\0mua\0" + password)

    def work() -> tuple[bytes, bytes, bytes]:
        with socket.create_connection(("127.0.0.1", relay.imap.port), timeout=15) as sock:
            converse(sock, until=b"\r\n")
            prompt = converse(sock, b"a1 LOGIN {3}\r\n", until=b"\r\n")
            reply = converse(
                sock, b"mua {%d+}\r\n" % len(password), password, b"\r\n", until=b"Logged in\r\n"
            )
            converse(sock, b"a2 LOGOUT\r\n", until=b"a2 OK")
        with socket.create_connection(("127.0.0.1", relay.imap.port), timeout=15) as sock:
            converse(sock, until=b"\r\n")
            converse(sock, b"b1 AUTHENTICATE PLAIN\r\n", until=b"+ ")
            # The NOOP rides in the same packet as the PLAIN response: it is Dovecot's.
            spliced = converse(sock, plain + b"\r\nb2 NOOP\r\n", until=b"b2 OK")
        return prompt, reply, spliced

    prompt, reply, spliced = await blocking(work)
    assert prompt == b"+ Ready for literal data\r\n"
    assert re.fullmatch(rb"a1 OK \[CAPABILITY IMAP4rev1 [^\]]+\] Logged in\r\n", reply), reply
    assert spliced.startswith(b"b1 OK [CAPABILITY IMAP4rev1 ")
    assert b"b2 OK NOOP completed" in spliced  # Dovecot's words, through the splice


async def test_wrong_passwords_and_protocols_are_refused_and_counted(relay: Relay):
    relay.user("mua", "office", IMAP)
    pop_only = relay.user("poponly", "office", POP3)

    wrong = await blocking(lambda: imap_refusal(relay, "mua", "not-the-password"))
    other = await blocking(lambda: imap_refusal(relay, "poponly", pop_only))
    assert wrong == other == "[AUTHENTICATIONFAILED] Authentication failed"
    assert relay.counters.snapshot().logins == {("imap", "refused"): 2}


async def test_an_address_with_too_many_failures_is_locked_out(relay: Relay):
    password = relay.user("mua", "office", IMAP)
    strict = listener(relay, ImapRelay, limiter=FailureLimiter(max_failures=2))
    await strict.start()
    try:
        first = await blocking(lambda: imap_refusal(relay, "mua", "wrong", strict.port))
        second = await blocking(lambda: imap_refusal(relay, "mua", "wrong", strict.port))
        right = await blocking(lambda: imap_refusal(relay, "mua", password, strict.port))
    finally:
        await strict.stop()
    assert first == "[AUTHENTICATIONFAILED] Authentication failed"
    assert re.fullmatch(
        r"\[UNAVAILABLE\] Too many failed logins from your address; try again in 300 s", second
    )
    assert right.startswith("[UNAVAILABLE] Too many failed logins")  # not even checked


async def test_a_mailbox_that_fetches_over_pop3_is_refused_with_what_it_uses(relay: Relay):
    password = relay.user("mua", "popbox", IMAP)
    text = await blocking(lambda: imap_refusal(relay, "mua", password))
    assert text == (
        "[AUTHENTICATIONFAILED] mailbox popbox fetches mail over pop3, not IMAP; use the POP3 relay"
    )


async def test_a_revoked_grant_is_the_clients_login_failure_with_the_reason(
    relay: Relay, auth_server: AuthServer
):
    authorized_mailbox(relay, auth_server, "coded")
    password = relay.user("mua", "coded", IMAP)
    auth_server.revoke_user(ALICE)  # consent withdrawn: access and refresh tokens die

    text = await blocking(lambda: imap_refusal(relay, "mua", password))
    assert text.startswith("[AUTHENTICATIONFAILED] mailbox 'coded' needs authorization: ")
    assert "mailoauth authorize coded" in text
    assert relay.counters.snapshot().logins == {("imap", "upstream"): 1}
    grant = relay.store.get_grant("coded")
    assert grant is not None
    assert grant.status.value == "needs_authorization"
    assert "auth failed" in relay.dovecot.log_text()  # Dovecot saw the revoked token


async def test_an_unreachable_mail_server_is_unavailable_not_a_hang(relay: Relay):
    office = relay.store.get_mailbox("office")
    port = free_port()
    unreachable = IncomingSettings(host="127.0.0.1", port=port, security="ssl")  # type: ignore[arg-type]
    relay.store.put_mailbox(office.__class__(**{**office.__dict__, "incoming": unreachable}))
    password = relay.user("mua", "office", IMAP)

    text = await blocking(lambda: imap_refusal(relay, "mua", password))
    assert text.startswith("[UNAVAILABLE] cannot log in to the mail server of mailbox office: ")
    assert f"127.0.0.1:{port}" in text


@pytest.mark.parametrize(
    ("garbage", "answer"),
    [
        (b"a1 LOGIN " + b"x" * 9000 + b"\r\n", b"* BAD Command line too long"),
        (b"\x00\xff\r\n" * 3, b"* BYE Too many invalid commands"),
        (b"a1 LOGIN {5000}\r\n", b"a1 BAD [TOOBIG]"),
    ],
    ids=["long line", "garbage", "big literal"],
)
async def test_bad_input_is_refused_and_the_next_client_logs_in(
    relay: Relay, garbage: bytes, answer: bytes
):
    password = relay.user("mua", "office", IMAP)

    def work() -> tuple[bytes, str]:
        with socket.create_connection(("127.0.0.1", relay.imap.port), timeout=15) as sock:
            converse(sock, until=b"\r\n")
            got = converse(sock, garbage, until=answer)
        with imap_client(relay) as imap:
            return got, imap.login("mua", password)[0]

    got, typ = await blocking(work)
    assert answer in got
    assert typ == "OK"


async def test_a_literal_that_never_ends_is_cut_at_the_preauth_timeout(relay: Relay):
    def work() -> bytes:
        with socket.create_connection(("127.0.0.1", relay.imap.port), timeout=15) as sock:
            converse(sock, until=b"\r\n")
            got = converse(sock, b"a1 LOGIN {10}\r\n", b"abc", until=b"* BYE")
            return got + converse(sock, until=b"never")  # then the relay closes

    got = await blocking(work)
    assert (
        got
        == b"+ Ready for literal data\r\n* BYE Autologout; idle for too long before logging in\r\n"
    )


# -- POP3 ---------------------------------------------------------------------------------


async def test_poplib_user_pass_stat_retr_quit(relay: Relay):
    password = relay.user("mua", "popbox", POP3)
    relay.dovecot.deliver(ALICE, message("popped", size=20_000))

    def work() -> tuple[bytes, tuple[int, int], list[bytes], bytes]:
        pop = poplib.POP3("127.0.0.1", relay.pop3.port, timeout=15)
        try:
            pop.user("mua")
            welcome = pop.pass_(password)
            stat = pop.stat()
            _, lines, _ = pop.retr(1)
        finally:
            quit_reply = pop.quit()
        return welcome, stat, lines, quit_reply

    welcome, (count, _size), lines, quit_reply = await blocking(work)
    assert welcome == b"+OK Logged in"
    assert count == 1
    assert b"\r\n".join(lines).endswith(message("popped", size=20_000).rstrip(b"\r\n"))
    assert quit_reply.startswith(b"+OK")  # Dovecot's "Logging out."
    assert relay.counters.snapshot().logins == {("pop3", "ok"): 1}


async def test_pop3_auth_plain_raw_and_a_wrong_password(relay: Relay):
    password = relay.user("mua", "popbox", POP3).encode()
    plain = base64.b64encode(b"\0mua\0" + password)

    def work() -> tuple[bytes, bytes]:
        with socket.create_connection(("127.0.0.1", relay.pop3.port), timeout=15) as sock:
            converse(sock, until=b"\r\n")
            wrong = converse(sock, b"USER mua\r\nPASS nope\r\n", until=b"failed\r\n")
            good = converse(sock, b"AUTH PLAIN " + plain + b"\r\nSTAT\r\n", until=b"+OK 0 0")
            converse(sock, b"QUIT\r\n", until=b"\r\n")
        return wrong, good

    wrong, good = await blocking(work)
    assert wrong == b"+OK\r\n-ERR [AUTH] Authentication failed\r\n"
    assert good == b"+OK Logged in\r\n+OK 0 0\r\n"  # STAT pipelined, answered by Dovecot


async def test_pop3_refuses_an_imap_mailbox(relay: Relay):
    password = relay.user("mua", "office", POP3)

    def work() -> str:
        pop = poplib.POP3("127.0.0.1", relay.pop3.port, timeout=15)
        try:
            pop.user("mua")
            with pytest.raises(poplib.error_proto) as refused:
                pop.pass_(password)
            return str(refused.value)
        finally:
            pop.close()

    text = await blocking(work)
    assert "-ERR [AUTH] mailbox office fetches mail over imap, not POP3; use the IMAP relay" in text
