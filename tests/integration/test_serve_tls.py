"""`mailoauth serve --tls-cert/--tls-key` as an admin runs it: https with a certificate from a
throw-away CA (trustme), verified by a client that trusts only that CA; bad files stop the
command before it binds, naming the file; and a network address without TLS is refused."""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from tests.cli import Cli
from tests.service import running_service

pytestmark = pytest.mark.integration


def test_serve_speaks_https_that_a_client_trusting_the_ca_verifies(
    pem: tuple[Path, Path], client_context: ssl.SSLContext, tmp_path: Path
) -> None:
    trusting = client_context
    args = ("--tls-cert", str(pem[0]), "--tls-key", str(pem[1]))
    with running_service(
        tmp_path / "home",
        args=args,
        scheme="https",
        verify=trusting,
        env={"MAILOAUTH_BASE_URL": ""},
    ) as service:
        health = httpx.get(service.url("/healthz"), verify=trusting, timeout=10)
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        assert health.extensions["http_version"] == b"HTTP/1.1"
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(service.url("/healthz"), timeout=10)  # the system CAs don't know it
        with pytest.raises(httpx.RemoteProtocolError):
            httpx.get(f"http://127.0.0.1:{service.port}/healthz", timeout=10)  # no plain http
        log = service.log()
    url = f"https://127.0.0.1:{service.port}"
    start = [line for line in log.splitlines() if line.startswith("mailoauth serving on ")]
    assert start, log
    assert start[0].startswith(f"mailoauth serving on {url} ")
    assert f"redirect URI: {url}/oauth/callback" in start[0]


def test_a_key_of_another_certificate_stops_serve_naming_the_file(
    ca: trustme.CA, pem: tuple[Path, Path], tmp_path: Path, cli: Cli
) -> None:
    other = tmp_path / "other.key"
    ca.issue_cert("127.0.0.1").private_key_pem.write_to_path(str(other))
    env = {"MAILOAUTH_TLS_CERT": str(pem[0]), "MAILOAUTH_TLS_KEY": str(other)}
    message = cli.fails("serve", "--listen", "127.0.0.1:8443", env=env)
    assert message.startswith(f"tls_key: {other} is not the private key of the certificate")
    assert not (cli.home / "mailoauth.db").exists()  # stopped before the store was opened


def test_unreadable_or_locked_files_stop_serve_naming_the_file(
    pem: tuple[Path, Path], tmp_path: Path, cli: Cli
) -> None:
    missing = tmp_path / "missing.crt"
    message = cli.fails("serve", "--tls-cert", str(missing), "--tls-key", str(pem[1]))
    assert message.startswith(f"tls_cert: cannot read {missing}")
    key = serialization.load_pem_private_key(pem[1].read_bytes(), None)
    locked = tmp_path / "locked.key"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"a passphrase"),
        )
    )
    message = cli.fails("serve", "--tls-cert", str(pem[0]), "--tls-key", str(locked))
    assert message.startswith(f"tls_key: {locked} is protected by a passphrase")


def test_a_network_address_without_tls_is_refused(cli: Cli) -> None:
    message = cli.fails("serve", "--listen", "0.0.0.0:8025")
    assert message.startswith("--listen: 0.0.0.0 is not a loopback address and the service")
    assert "--tls-cert and --tls-key" in message
    assert "--base-url https://" in message
