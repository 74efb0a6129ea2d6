"""The IMAP and POP3 relays with TLS on the client's side (a trustme certificate):
STARTTLS and STLS on a listener that is not loopback (no password before TLS), implicit
TLS; two thousand idle connections while another client logs in; and the whole chain
through the real ``mailoauth relay`` command, configured from the environment."""

from __future__ import annotations

import imaplib
import poplib
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from mailoauth.relay import ImapRelay, Pop3Relay
from tests.cli import MAILOAUTH, Cli
from tests.mail_setup import apply_password_mailboxes
from tests.net import free_port
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import ALICE, Dovecot
from tests.relay_fetch_setup import IMAP, POP3, Relay, blocking, listener, message, relay, relay_tls

pytestmark = pytest.mark.integration

__all__ = ["relay"]  # the fixture, imported for the tests here


async def test_imap_starttls_off_loopback(
    relay: Relay, pem: tuple[Path, Path], client_context: ssl.SSLContext
):
    password = relay.user("mua", "office", IMAP)
    relay.dovecot.deliver(ALICE, message("over tls"))
    public = listener(relay, ImapRelay, tls=relay_tls(*pem), loopback=False)
    await public.start()

    def work() -> tuple[tuple[str, ...], bytes, tuple[str, ...], str, list[bytes | None]]:
        with imaplib.IMAP4("127.0.0.1", public.port, timeout=15) as imap:
            before = imap.capabilities
            with pytest.raises(imaplib.IMAP4.error) as refused:
                imap.login("mua", password)
            imap.starttls(ssl_context=client_context)
            after_tls = imap.capabilities
            sock = imap.sock
            version = sock.version() if isinstance(sock, ssl.SSLSocket) else None
            assert imap.login("mua", password)[0] == "OK"
            _, count = imap.select("INBOX")
            return before, refused.value.args[0], after_tls, str(version), count

    try:
        before, refused, after_tls, version, count = await blocking(work)
    finally:
        await public.stop()
    assert "STARTTLS" in before
    assert "LOGINDISABLED" in before
    assert "AUTH=PLAIN" not in before
    assert refused.startswith(b"[PRIVACYREQUIRED] Use STARTTLS first")
    assert "AUTH=PLAIN" in after_tls
    assert "STARTTLS" not in after_tls
    assert version in ("TLSv1.2", "TLSv1.3")
    assert count == [b"1"]


async def test_pop3_stls_off_loopback(
    relay: Relay, pem: tuple[Path, Path], client_context: ssl.SSLContext
):
    password = relay.user("mua", "popbox", POP3)
    public = listener(relay, Pop3Relay, tls=relay_tls(*pem), loopback=False)
    await public.start()

    def work() -> tuple[dict[str, list[str]], str, tuple[int, int]]:
        pop = poplib.POP3("127.0.0.1", public.port, timeout=15)
        try:
            offered = pop.capa()
            with pytest.raises(poplib.error_proto) as refused:
                pop.user("mua")
            pop.stls(context=client_context)
            pop.user("mua")
            pop.pass_(password)
            return offered, str(refused.value), pop.stat()
        finally:
            pop.quit()

    try:
        offered, refused, stat = await blocking(work)
    finally:
        await public.stop()
    assert "STLS" in offered
    assert "USER" not in offered
    assert "Use STLS first" in refused
    assert stat == (0, 0)


async def test_imap_implicit_tls(
    relay: Relay, pem: tuple[Path, Path], client_context: ssl.SSLContext
):
    password = relay.user("mua", "office", IMAP)
    implicit = listener(relay, ImapRelay, tls=relay_tls(*pem, implicit=True), loopback=False)
    await implicit.start()

    def work() -> tuple[tuple[str, ...], str]:
        with imaplib.IMAP4_SSL(
            "127.0.0.1", implicit.port, ssl_context=client_context, timeout=15
        ) as imap:
            return imap.capabilities, imap.login("mua", password)[0]

    try:
        capabilities, typ = await blocking(work)
    finally:
        await implicit.stop()
    assert "AUTH=PLAIN" in capabilities
    assert "STARTTLS" not in capabilities
    assert typ == "OK"


async def test_two_thousand_idle_connections_while_another_client_logs_in(relay: Relay):
    password = relay.user("mua", "office", IMAP)

    def work() -> tuple[int, str]:
        idle = [socket.create_connection(("127.0.0.1", relay.imap.port)) for _ in range(2000)]
        try:
            with imaplib.IMAP4("127.0.0.1", relay.imap.port, timeout=15) as imap:
                typ = imap.login("mua", password)[0]
                imap.select("INBOX")
            greeted = sum(1 for sock in idle[-5:] if sock.recv(100).startswith(b"* OK"))
        finally:
            for sock in idle:
                sock.close()
        return greeted, typ

    greeted, typ = await blocking(work)
    assert typ == "OK"
    assert greeted == 5
    deadline = time.monotonic() + 10
    while relay.counters.snapshot().connections.get("imap") and time.monotonic() < deadline:
        await blocking(lambda: time.sleep(0.05))
    assert relay.counters.snapshot().connections["imap"] == 0


def test_mailoauth_relay_serves_imap_and_pop3_end_to_end(
    cli: Cli, auth_server: AuthServer, dovecot: Dovecot, tmp_path: Path
):
    imap_port, pop3_port = free_port(), free_port()
    cli.env.update(
        {
            "MAILOAUTH_RELAY_SMTP": "off",
            "MAILOAUTH_RELAY_IMAP": f"127.0.0.1:{imap_port}",
            "MAILOAUTH_RELAY_POP3": f"127.0.0.1:{pop3_port}",
        }
    )
    apply_password_mailboxes(
        cli,
        auth_server,
        dovecot,
        tmp_path,
        {
            "office": f"""
login = "{ALICE}"
[mailboxes.office.incoming]
transport = "imap"
host = "127.0.0.1"
port = {dovecot.ports.imap}
security = "starttls"
""",
            "popbox": f"""
login = "{ALICE}"
[mailboxes.popbox.incoming]
transport = "pop3"
host = "127.0.0.1"
port = {dovecot.ports.pop3s}
security = "ssl"
""",
        },
    )
    added = cli.run("relay-user", "add", "mua", "--mailbox", "office", "--protocols", "imap")
    password = added.stdout.splitlines()[1].removeprefix("password: ")
    assert f"IMAP relay 127.0.0.1:{imap_port}, no TLS, LOGIN or AUTHENTICATE PLAIN" in added.stderr
    pop_password = (
        cli.ok("relay-user", "add", "pop", "--mailbox", "popbox", "--protocols", "pop3")
        .splitlines()[1]
        .removeprefix("password: ")
    )
    dovecot.deliver(ALICE, message("end to end"))
    proc = subprocess.Popen(
        [MAILOAUTH, "relay"], env=cli.environ(), stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", pop3_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the relay did not listen"
                time.sleep(0.1)
        with imaplib.IMAP4("127.0.0.1", imap_port, timeout=15) as imap:
            imap.login("mua", password)
            imap.select("INBOX", readonly=True)
            _, found = imap.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")
            imap.logout()
        pop = poplib.POP3("127.0.0.1", pop3_port, timeout=15)
        pop.user("pop")
        pop.pass_(pop_password)
        count, _ = pop.stat()
        pop.quit()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    first = found[0]
    assert isinstance(first, tuple)
    assert first[1].strip() == b"Subject: end to end"
    assert count == 1
    assert f"relay: IMAP listening on 127.0.0.1:{imap_port} (no TLS)" in err
    assert "relay: mua logged in over IMAP from 127.0.0.1 (mailbox office)" in err
    assert password not in err
    assert pop_password not in err
