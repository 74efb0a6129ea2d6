"""What the REST API tests share: a real SQLite store in a temp dir, API keys of each
scope made the way ``mailoauth api-key add`` makes them, and the service's ASGI app
called through httpx (in process: ``httpx.ASGITransport``; with ``live=True`` the app's
lifespan runs too — token service, HTTP client, scheduler — as under ``mailoauth serve``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from mailoauth.config import Settings
from mailoauth.store import SqlStore, open_store
from mailoauth.web.api.keys import ApiScope, create_key
from mailoauth.web.app import create_app
from tests.stores import sqlite_settings

SCOPES = ("read", "send", "admin")
RELAY_LISTENERS = ("relay_smtp", "relay_imap", "relay_pop3")


def make_settings(home: Path, *, ca_file: str | None = None) -> Settings:
    settings = sqlite_settings(home, ca_file=ca_file)
    # No relay listener (2525, 1143, 1110) from an API test: whichever this version has.
    relays = [f.name for f in dataclasses.fields(settings) if f.name in RELAY_LISTENERS]
    return dataclasses.replace(settings, **dict.fromkeys(relays))


def make_keys(store: SqlStore) -> dict[str, str]:
    """One key per scope, named after it."""
    return {scope: create_key(store, scope, [ApiScope(scope)])[1].reveal() for scope in SCOPES}


@dataclass
class Api:
    """An httpx client on the app, with the keys of each scope, that remembers every
    answer it got (to check them all for secrets)."""

    client: httpx.AsyncClient
    store: SqlStore
    keys: dict[str, str]
    seen: list[httpx.Response] = field(default_factory=list)

    async def call(
        self, method: str, path: str, *, scope: str | None = "admin", **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if scope is not None:
            headers["Authorization"] = f"Bearer {self.keys[scope]}"
        response = await self.client.request(method, f"/api/v1{path}", headers=headers, **kwargs)
        self.seen.append(response)
        return response

    async def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = await self.call(method, path, **kwargs)
        assert response.status_code == status, (response.status_code, response.text)
        return response.json() if response.content else None

    async def fails(self, method: str, path: str, status: int, **kwargs: Any) -> dict[str, Any]:
        """An error answer: the status, JSON of the one shape, a message a user can act on."""
        response = await self.call(method, path, **kwargs)
        assert response.status_code == status, (response.status_code, response.text)
        body: dict[str, Any] = response.json()
        assert set(body) == {"error", "message", "field"}, body
        assert body["message"]
        assert "Traceback" not in body["message"]
        return body

    def everything_seen(self) -> str:
        """Every answer's headers and body, as one text."""
        return "\n".join(json.dumps(dict(r.headers)) + "\n" + r.text for r in self.seen)


@asynccontextmanager
async def api_client(
    home: Path, *, live: bool = False, ca_file: str | None = None
) -> AsyncIterator[Api]:
    """The app on a fresh store; ``live``: with its lifespan (background) running."""
    store = open_store(make_settings(home, ca_file=ca_file))
    try:
        keys = make_keys(store)
        app = create_app(make_settings(home, ca_file=ca_file), store, background=live)
        transport = httpx.ASGITransport(app=app)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
        ):
            yield Api(client, store, keys)
    finally:
        store.close()


class LogLines(logging.Handler):
    """Every ``mailoauth.*`` log line, formatted, while installed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)
