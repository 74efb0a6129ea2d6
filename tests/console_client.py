"""The console as tests drive it without a browser: the real app on a real SQLite store,
reached through httpx's ASGI transport (cookies kept like a browser keeps them)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx

from mailoauth.secret import Secret
from mailoauth.store import Admin, Store
from mailoauth.web.console.passwords import ScryptCost, hash_password

PASSWORD = "correct horse battery staple"
#: Cheap hashes for admins the tests make directly; the CLI and setup page use the real cost.
FAST = ScryptCost(n=2**10)

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def add_admin(store: Store, name: str = "alice", password: str = PASSWORD) -> None:
    now = datetime.now(UTC)
    hashed = hash_password(Secret(password), FAST)
    store.add_admin(Admin(name, hashed, created_at=now, password_set_at=now))


def token_of(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def client_for(app: object, base_url: str = "http://testserver", address: str = "192.0.2.10"):
    transport = httpx.ASGITransport(app=app, client=(address, 50000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url=base_url)


async def login(
    client: httpx.AsyncClient, name: str = "alice", password: str = PASSWORD, next: str = "/"
) -> httpx.Response:
    page = await client.get("/login")
    form = {"csrf_token": token_of(page.text), "name": name, "password": password, "next": next}
    return await client.post("/login", data=form)


async def post_form(client: httpx.AsyncClient, page: str, action: str, **fields: str):
    """Submit ``action`` the way the browser does from ``page``: with that page's token."""
    html = (await client.get(page)).text
    return await client.post(action, data={"csrf_token": token_of(html), **fields})
