"""What every CLI command receives: the loaded settings and a way to open the store."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias, TypeVar

import typer

from mailoauth.config import Settings
from mailoauth.store import SqlStore, open_store
from mailoauth.store.keys import key_file_too_open

if TYPE_CHECKING:
    import httpx

    from mailoauth.oauth.tokens import TokenService

__all__ = ["CliContext", "MailWork", "run_mail", "settings_of", "store_of"]

T = TypeVar("T")

#: What a mail command does inside its one asyncio run.
MailWork: TypeAlias = "Callable[[SqlStore, TokenService, httpx.AsyncClient], Awaitable[T]]"


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


def run_mail(settings: Settings, store: SqlStore, work: MailWork[T]) -> T:
    """One asyncio run with one HTTP client (the system's CAs plus ``MAILOAUTH_CA_FILE``)
    and one token service; refreshes still in flight are drained before the loop ends, so
    a rotated refresh token is never lost."""
    from mailoauth.mail.trust import http_client  # the mail clients: only for mail commands
    from mailoauth.oauth.tokens import TokenService

    async def main() -> T:
        async with http_client(settings.ca_file) as http:
            tokens = TokenService(store, http)
            try:
                return await work(store, tokens, http)
            finally:
                await tokens.drain()

    return asyncio.run(main())
