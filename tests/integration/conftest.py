"""Fixtures of the integration tests."""

from pathlib import Path

import pytest

from tests.cli import Cli


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """The real `mailoauth` command with its own empty data directory."""
    return Cli(home=tmp_path / "home")
