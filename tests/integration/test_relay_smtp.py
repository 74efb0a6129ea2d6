"""The SMTP relay inside the real `mailoauth serve` (and alone, as `mailoauth relay`): a
relay user made with the CLI logs in with its generated password over AUTH PLAIN or LOGIN,
and its mail reaches BOB's INBOX in Dovecot through the queue and OAuth2 submission, with
the Message-ID it was given. Wrong passwords get 535, a foreign From 553, and no password
ever reaches the service log."""

from __future__ import annotations

import email
import signal
import smtplib
import socket
import ssl
import subprocess
import time
from email.message import EmailMessage
from pathlib import Path

import pytest
import trustme

from tests.cli import MAILOAUTH, Cli
from tests.integration.test_scheduler import serving
from tests.mail_setup import apply_password_mailboxes
from tests.net import free_port
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import ALICE, BOB, Dovecot

pytestmark = pytest.mark.integration


@pytest.fixture
def relay_cli(cli: Cli, auth_server: AuthServer, dovecot: Dovecot, tmp_path: Path) -> Cli:
    """Mailbox alice (password grant, submission on Dovecot) and a free relay port."""
    cli.env["MAILOAUTH_RELAY_SMTP"] = f"127.0.0.1:{free_port()}"
    cli.env["MAILOAUTH_RELAY_LOGIN_CACHE"] = "1"  # seconds a checked login is kept
    return apply_password_mailboxes(
        cli,
        auth_server,
        dovecot,
        tmp_path,
        {
            "alice": f"""
login = "{ALICE}"
outgoing = {{ host = "127.0.0.1", port = {dovecot.ports.submission} }}
"""
        },
    )


def relay_port(cli: Cli) -> int:
    return int(cli.env["MAILOAUTH_RELAY_SMTP"].rpartition(":")[2])


def add_relay_user(cli: Cli, name: str) -> str:
    """`relay-user add`: returns the password it printed (once)."""
    out = cli.ok("relay-user", "add", name, "--mailbox", "alice")
    login, password = out.splitlines()
    assert login == f"login:    {name}"
    return password.removeprefix("password: ")


def note(message_id: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"PBX <{ALICE}>"
    message["To"] = BOB
    message["Subject"] = "voicemail from 555-0100"
    message["Message-ID"] = message_id
    message.set_content("You have a new voicemail.\n")
    return message.as_bytes()


def send(
    port: int,
    mechanism: str,
    user: str,
    password: str,
    data: bytes,
    sender: str = ALICE,
    tls: ssl.SSLContext | None = None,
):
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        smtp.ehlo("pbx.example")
        if tls is not None:
            smtp.starttls(context=tls)
            smtp.ehlo("pbx.example")
        smtp.user, smtp.password = user, password
        method = smtp.auth_plain if mechanism == "PLAIN" else smtp.auth_login
        smtp.auth(mechanism, method, initial_response_ok=mechanism == "PLAIN")
        return smtp.sendmail(sender, [BOB], data)


def wait_for_ids(dovecot: Dovecot, count: int, seconds: float = 10) -> list[str]:
    deadline = time.monotonic() + seconds
    while True:
        found = sorted(
            email.message_from_bytes(path.read_bytes())["Message-ID"]
            for sub in ("new", "cur")
            if (dovecot.mail_dir(BOB) / sub).is_dir()
            for path in (dovecot.mail_dir(BOB) / sub).iterdir()
        )
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_an_app_sends_through_the_relay_in_serve(relay_cli: Cli, dovecot: Dovecot):
    password = add_relay_user(relay_cli, "pbx")
    listing = relay_cli.ok("relay-user", "list", env={"COLUMNS": "200"})
    assert "pbx" in listing
    assert ALICE in listing
    assert password not in listing
    port = relay_port(relay_cli)
    with serving(relay_cli) as (_url, output):
        send(port, "PLAIN", "pbx", password, note("<relay-plain@pbx.example>"))
        send(port, "LOGIN", "pbx", password, note("<relay-login@pbx.example>"))
        # Delivered at once (the relay starts a delivery run), not at the next 15 s tick.
        assert wait_for_ids(dovecot, 2) == [
            "<relay-login@pbx.example>",
            "<relay-plain@pbx.example>",
        ]

        with pytest.raises(smtplib.SMTPAuthenticationError) as wrong:
            send(port, "PLAIN", "pbx", password[:-1] + "x", note("<never@pbx.example>"))
        assert wrong.value.smtp_code == 535
        with pytest.raises(smtplib.SMTPSenderRefused) as foreign:
            send(port, "LOGIN", "pbx", password, note("<x@pbx.example>"), sender=BOB)
        assert foreign.value.smtp_code == 553
        assert f"allowed: {ALICE}" in foreign.value.smtp_error.decode()

        # A new password works at once in the running service; the old one no longer
        # once the login kept from its last use expired (MAILOAUTH_RELAY_LOGIN_CACHE).
        new = add_relay_user_reset(relay_cli, "pbx")
        send(port, "PLAIN", "pbx", new, note("<relay-new@pbx.example>"))
        time.sleep(1.1)
        with pytest.raises(smtplib.SMTPAuthenticationError):
            send(port, "PLAIN", "pbx", password, note("<old@pbx.example>"))
        assert len(wait_for_ids(dovecot, 3)) == 3
    (log,) = output
    assert "relay: SMTP listening on 127.0.0.1" in log
    assert "relay: failed SMTP login as 'pbx'" in log
    assert password not in log
    assert new not in log


def add_relay_user_reset(cli: Cli, name: str) -> str:
    out = cli.ok("relay-user", "reset-password", name)
    return out.splitlines()[1].removeprefix("password: ")


def test_the_relay_runs_alone_with_starttls_and_stops_on_sigterm(
    relay_cli: Cli, dovecot: Dovecot, tmp_path: Path
):
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "relay.pem", tmp_path / "relay.key"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    relay_cli.env.update(
        {"MAILOAUTH_RELAY_TLS_CERT": str(cert), "MAILOAUTH_RELAY_TLS_KEY": str(key)}
    )
    client_tls = ssl.create_default_context()
    ca.configure_trust(client_tls)
    password = add_relay_user(relay_cli, "printer")
    port = relay_port(relay_cli)
    proc = subprocess.Popen(
        [MAILOAUTH, "relay"], env=relay_cli.environ(), stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the relay did not listen"
                time.sleep(0.1)
        send(port, "LOGIN", "printer", password, note("<alone@pbx.example>"), tls=client_tls)
        assert wait_for_ids(dovecot, 1) == ["<alone@pbx.example>"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "mailoauth relay stopped" in err
    assert "(queue or passthrough per relay user, starttls)" in err
    assert password not in err


def test_a_non_loopback_relay_address_is_refused_without_tls(relay_cli: Cli):
    problem = relay_cli.fails("relay-user", "list", env={"MAILOAUTH_RELAY_SMTP": "0.0.0.0:2525"})
    assert problem.startswith("relay_smtp: 0.0.0.0 is not a loopback address")
    assert "no TLS certificate" in problem
    assert "MAILOAUTH_RELAY_TLS_CERT" in problem
