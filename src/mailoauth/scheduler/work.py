"""The scheduler's jobs on the real thing: the store, the token service, the mail layer.

One :class:`~mailoauth.oauth.tokens.TokenService` and one ``httpx.AsyncClient`` serve the
whole service (the web app's lifespan builds them), so a refresh the scheduler starts and
a send through the API share one cache and one single-flight refresh per mailbox.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import httpx

from mailoauth.mail import FetchReport, fetch
from mailoauth.models import GrantStatus
from mailoauth.oauth.tokens import TokenService
from mailoauth.scheduler.snapshot import Snapshot, load_snapshot
from mailoauth.store import Store

__all__ = ["ServiceWork"]


class ServiceWork:
    """:class:`~mailoauth.scheduler.runner.Work` over a store, a token service and HTTP."""

    def __init__(
        self,
        store: Store,
        tokens: TokenService,
        http: httpx.AsyncClient,
        *,
        ca_file: str | None = None,
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._http = http
        self._ca_file = ca_file

    def snapshot(self) -> Snapshot:
        return load_snapshot(self._store)

    async def refresh(self, mailbox: str, seen_expiry: datetime | None) -> datetime | None:
        """Refresh now, unless the store already holds a newer token than the plan saw
        (``mailoauth token``, another node or a send refreshed it meanwhile)."""
        grant = await asyncio.to_thread(self._store.get_grant, mailbox)
        if (
            grant is not None
            and grant.status is GrantStatus.CONNECTED
            and grant.expires_at is not None
            and (seen_expiry is None or grant.expires_at > seen_expiry)
        ):
            return grant.expires_at
        token = await self._tokens.refresh(mailbox)
        return token.expires_at

    async def fetch(self, mailbox: str) -> FetchReport:
        return await fetch(
            self._store, self._tokens, mailbox, http=self._http, ca_file=self._ca_file
        )
