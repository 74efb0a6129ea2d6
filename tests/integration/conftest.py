"""Fixtures of the integration tests."""

from pathlib import Path

import pytest

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
