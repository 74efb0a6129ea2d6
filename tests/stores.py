"""The embedded store of a test: SQLite and a key file in one directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mailoauth.config import Settings
from mailoauth.store import SqlStore, open_store


def sqlite_settings(home: Path, **fields: Any) -> Settings:
    """Settings for a store in ``home`` (``mailoauth.db``, ``secret.key``); ``fields``
    override any other setting."""
    return Settings(
        data_dir=home,
        database_url=f"sqlite:///{home / 'mailoauth.db'}",
        key_file=home / "secret.key",
        **fields,
    )


def open_sqlite(home: Path) -> SqlStore:
    """A fresh store in ``home``, migrated."""
    return open_store(sqlite_settings(home))
