"""Debian's `swaks` (an independent SMTP client, in Perl) through the real `mailoauth
relay` on a public address (``0.0.0.0``) with a trustme certificate — the set-up of an
application on another host: STARTTLS (RFC 3207) with the certificate verified against
the test CA, then AUTH PLAIN or LOGIN (RFC 4954), and the mail arrives in Dovecot. A
wrong password makes swaks exit non-zero with the relay's 535; AUTH before STARTTLS on
this listener gets 538 (RFC 4954 section 6) — the relay derives "not loopback" from the
address it was given, no test switch involved.
"""

from __future__ import annotations

import base64
import smtplib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from mailoauth.relay import new_password
from tests.cli import Cli
from tests.net import free_port
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import ALICE, BOB, Dovecot
from tests.relay_helpers import APP, HOST, RelayProcess, relay_mailbox, running, wait_for_inbox

pytestmark = pytest.mark.integration

SWAKS = "/usr/bin/swaks"


@dataclass
class TlsRelay:
    port: int
    password: str
    ca: Path  # the CA that issued the relay's certificate
    process: RelayProcess
    dovecot: Dovecot

    def swaks(self, *args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
        """swaks from ALICE to BOB through the relay, as relay user ``app``. The password
        goes as ``--auth-password=…``: a generated one may start with ``-``."""
        command = [
            SWAKS, "--server", f"{HOST}:{self.port}", "--helo", "app.example",
            "--from", ALICE, "--to", BOB,
            "--auth-user", APP, f"--auth-password={password or self.password}",
            "--auth-hide-password", "--timeout", "20", *args,
        ]  # fmt: skip
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def relay(
    auth_server_process: AuthServer,
    dovecot_process: Dovecot,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TlsRelay]:
    if not Path(SWAKS).exists():
        pytest.fail(f"{SWAKS} is missing: install the Debian package swaks (scripts/test does)")
    if subprocess.run(["perl", "-MNet::SSLeay", "-e1"], capture_output=True).returncode:
        pytest.fail("swaks needs Net::SSLeay for --tls: install the Debian package "
                    "libnet-ssleay-perl (a Recommends of swaks, so --no-install-recommends "
                    "leaves it out)")  # fmt: skip
    tmp = tmp_path_factory.mktemp("swaks")
    ca = trustme.CA()
    issued = ca.issue_cert(HOST)
    cert, key, ca_file = tmp / "relay.pem", tmp / "relay.key", tmp / "ca.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    auth_server_process.start()
    auth_server_process.reset()
    dovecot_process.begin_test(auth_server_process)
    cli = Cli(home=tmp / "home")
    cli.env.update({"MAILOAUTH_RELAY_TLS_CERT": str(cert), "MAILOAUTH_RELAY_TLS_KEY": str(key)})
    port = free_port()
    password = relay_mailbox(
        cli,
        auth_server_process,
        dovecot_process,
        tmp,
        relay=f"0.0.0.0:{port}",
    )
    with running(RelayProcess(cli, tmp / "relay.log")) as process:
        yield TlsRelay(port, password, ca_file, process, dovecot_process)
    log = process.log_text()
    assert "(queue or passthrough per relay user, starttls)" in log
    assert password not in log


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_swaks_over_starttls_with_a_verified_certificate_delivers(
    relay: TlsRelay, mechanism: str
) -> None:
    message_id = f"<swaks-{mechanism.lower()}@app.example>"
    result = relay.swaks(
        "--tls", "--tls-verify", "--tls-ca-path", str(relay.ca),
        "--auth", mechanism, "--header", f"Message-Id: {message_id}",
        "--body", f"sent by swaks with AUTH {mechanism}",
    )  # fmt: skip
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    before_tls, _, after_tls = out.partition("=== TLS started with cipher TLSv1.")
    assert "<-  250-STARTTLS" in before_tls
    assert "AUTH" not in before_tls  # not offered in the clear on a public address
    assert "<~  250-AUTH LOGIN PLAIN" in after_tls
    assert f" ~> AUTH {mechanism}" in after_tls
    assert "<~  235 2.7.0 Authentication successful" in after_tls
    assert "<~  250 2.0.0 queued as " in after_tls
    assert relay.password not in result.stdout
    found = dict(wait_for_inbox(relay.dovecot, {message_id}))
    assert found.get(message_id) == f"sent by swaks with AUTH {mechanism}"


def test_swaks_with_a_wrong_password_exits_28_with_535(relay: TlsRelay) -> None:
    result = relay.swaks(
        "--tls", "--tls-verify", "--tls-ca-path", str(relay.ca), "--auth", "PLAIN",
        password="not-the-password",
    )  # fmt: skip
    assert result.returncode == 28, result.stdout + result.stderr  # "error in AUTH transaction"
    assert "<~* 535 5.7.8 Authentication credentials invalid" in result.stdout
    assert "~> MAIL FROM" not in result.stdout


def test_swaks_refuses_a_relay_certificate_from_another_ca(relay: TlsRelay, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    result = relay.swaks("--tls", "--tls-verify", "--tls-ca-path", str(other), "--auth", "PLAIN")
    assert result.returncode == 29, result.stdout + result.stderr  # "error in TLS transaction"
    assert "~> AUTH" not in result.stdout


def test_auth_before_starttls_on_a_public_address_gets_538(relay: TlsRelay) -> None:
    # swaks: AUTH is not even offered before STARTTLS, so it does not log in.
    result = relay.swaks("--auth", "PLAIN")
    assert result.returncode == 28, result.stdout + result.stderr
    assert "Host did not advertise authentication" in result.stdout + result.stderr
    assert "~> AUTH" not in result.stdout
    # A client that sends AUTH anyway (the right password, even) gets 538 and stays out.
    with smtplib.SMTP(HOST, relay.port, timeout=20) as smtp:
        smtp.ehlo("app.example")
        assert not smtp.has_extn("auth")
        assert smtp.has_extn("starttls")
        initial = base64.b64encode(f"\0{APP}\0{relay.password}".encode()).decode()
        code, reply = smtp.docmd("AUTH", f"PLAIN {initial}")
        assert (code, reply) == (
            538,
            b"5.7.11 Encryption required for requested authentication mechanism",
        )
        assert smtp.mail(ALICE)[0] == 530  # still not logged in


def test_a_generated_password_never_starts_with_a_dash() -> None:
    starts = {new_password().reveal()[0] for _ in range(2000)}
    assert "-" not in starts
