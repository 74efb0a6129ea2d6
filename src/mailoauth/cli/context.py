"""What every CLI command receives: the loaded settings and a way to open the store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import typer

from mailoauth.config import Settings
from mailoauth.store import SqlStore, open_store
from mailoauth.store.keys import key_file_too_open

__all__ = ["CliContext", "settings_of", "store_of"]


@dataclass(frozen=True)
class CliContext:
    settings: Settings

    @contextmanager
    def store(self, *, create_key: bool = True) -> Iterator[SqlStore]:
        settings = self.settings
        if settings.secret_key is None and key_file_too_open(settings.key_file):
            typer.echo(
                f"warning: key file {settings.key_file} is readable by other users; "
                f"run `chmod 600 {settings.key_file}`",
                err=True,
            )
        store = open_store(settings, create_key=create_key)
        try:
            yield store
        finally:
            store.close()


def settings_of(ctx: typer.Context) -> Settings:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliContext)
    return obj.settings


@contextmanager
def store_of(ctx: typer.Context, *, create_key: bool = True) -> Iterator[SqlStore]:
    obj = ctx.find_root().obj
    assert isinstance(obj, CliContext)
    with obj.store(create_key=create_key) as store:
        yield store
