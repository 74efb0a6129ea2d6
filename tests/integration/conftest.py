"""Fixtures of the integration tests."""

import ssl
from pathlib import Path

import pytest
import trustme

from tests.cli import Cli

#: The relay listeners' default ports are fixed (2525, 1143, 1110): a test that starts
#: `serve` or `relay` gets them off unless it turns one on, on a free port, itself.
RELAYS_OFF = {
    "MAILOAUTH_RELAY_SMTP": "off",
    "MAILOAUTH_RELAY_IMAP": "off",
    "MAILOAUTH_RELAY_POP3": "off",
}


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """The real `mailoauth` command with its own empty data directory."""
    return Cli(home=tmp_path / "home", env=dict(RELAYS_OFF))


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    """A throw-away certificate authority for the service's and the relay's TLS."""
    return trustme.CA()


@pytest.fixture
def pem(ca: trustme.CA, tmp_path: Path) -> tuple[Path, Path]:
    """Certificate and key files for 127.0.0.1 and localhost, issued by ``ca``."""
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    return cert, key


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    """A client's TLS context that trusts ``ca`` (and verifies names)."""
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context
