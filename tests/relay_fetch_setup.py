"""What the IMAP / POP3 relay integration tests share: a real SQLite store with provider
``test`` (the test authorization server, client ``app``), mailboxes on the Dovecot peer
(``office``: IMAPS, ``popbox``: POP3 with STLS, both ALICE with a password grant), relay
users for them, and the relay listeners running in the test's event loop.

The blocking stdlib clients (imaplib, poplib, raw sockets) run in worker threads
(:func:`blocking`) so the listeners keep serving meanwhile."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from mailoauth.config import RelayTls
from mailoauth.models import Grant, IncomingSettings, Mailbox
from mailoauth.oauth.tokens import TokenService
from mailoauth.providers import GrantType, Security
from mailoauth.relay import FailureLimiter, ImapRelay, Pop3Relay, RelayProtocol, add_user
from mailoauth.relay.counters import RelayCounters
from mailoauth.secret import Secret
from mailoauth.store import SqlStore
from tests.net import free_port
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import ALICE, PASSWORD, Dovecot
from tests.stores import open_sqlite

T = TypeVar("T")

IMAP, POP3 = RelayProtocol.IMAP, RelayProtocol.POP3


async def blocking(work: Callable[[], T]) -> T:
    return await asyncio.to_thread(work)


def message(subject: str, size: int = 0) -> bytes:
    body = ("x" * 75 + "\r\n") * (size // 77) if size else f"body of {subject}\r\n"
    return (
        f"From: sender@example.org\r\nTo: {ALICE}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{subject.replace(' ', '-')}@example.org>\r\n\r\n{body}"
    ).encode()


@dataclass
class Relay:
    """The store, the two listeners and the relay users' passwords."""

    store: SqlStore
    tokens: TokenService
    dovecot: Dovecot
    imap: ImapRelay
    pop3: Pop3Relay
    counters: RelayCounters
    passwords: dict[str, str] = field(default_factory=dict)

    def user(self, name: str, mailbox: str, *protocols: RelayProtocol) -> str:
        self.passwords[name] = add_user(self.store, name, mailbox, protocols=protocols)[1].reveal()
        return self.passwords[name]

    def connect(self, port: int) -> socket.socket:
        return socket.create_connection(("127.0.0.1", port), timeout=10)


def open_test_store(tmp_path: Path, dovecot: Dovecot, auth_server: AuthServer) -> SqlStore:
    home = tmp_path / "home"
    store = open_sqlite(home)
    store.put_provider(auth_server.mail_provider())
    for name, incoming in (
        ("office", {"host": dovecot.host, "port": dovecot.ports.imaps, "security": "ssl"}),
        (
            "popbox",
            {
                "transport": "pop3",
                "host": dovecot.host,
                "port": dovecot.ports.pop3,
                "security": "starttls",
            },
        ),
    ):
        store.put_mailbox(
            Mailbox(
                name=name,
                provider="test",
                login=ALICE,
                grant=GrantType.PASSWORD,
                password=Secret(PASSWORD),
                incoming=IncomingSettings(**incoming),  # type: ignore[arg-type]
            )
        )
    return store


@pytest.fixture
async def relay(
    dovecot: Dovecot,
    auth_server: AuthServer,
    token_for: Callable[[str], str],
    tmp_path: Path,
) -> AsyncIterator[Relay]:
    """Both listeners on free loopback ports, a 2 s pre-auth timeout; a test that needs
    other options (TLS, not loopback, its own limiter) adds one with :func:`listener`."""
    del token_for  # registers the client "app" and the users at the auth server
    store = open_test_store(tmp_path, dovecot, auth_server)
    counters = RelayCounters()
    limiter = FailureLimiter()
    async with httpx.AsyncClient() as http:
        tokens = TokenService(store, http)
        options: dict[str, Any] = {
            "limiter": limiter,
            "counters": counters,
            "ca_file": str(dovecot.ca_path),
            "preauth_timeout": 2.0,
            "upstream_timeout": 10.0,
        }
        imap = ImapRelay(store, tokens, "127.0.0.1", free_port(), **options)
        pop3 = Pop3Relay(store, tokens, "127.0.0.1", free_port(), **options)
        await imap.start()
        await pop3.start()
        try:
            yield Relay(store, tokens, dovecot, imap, pop3, counters)
        finally:
            await imap.stop()
            await pop3.stop()
            await tokens.drain()
            store.close()


def authorized_mailbox(relay: Relay, auth_server: AuthServer, name: str) -> None:
    """Mailbox ``name`` (IMAPS) with an authorization-code grant: an access and a refresh
    token of ALICE's, as if she had consented in a browser (revoke_user undoes it)."""
    with httpx.Client(timeout=10) as http:
        answer = http.post(
            auth_server.token_url,
            data={
                "grant_type": "password",
                "username": ALICE,
                "password": PASSWORD,
                "scope": "mail",
                "client_id": "app",
                "client_secret": "app-secret",
            },
        ).json()
    dovecot = relay.dovecot
    relay.store.put_mailbox(
        Mailbox(
            name=name,
            provider="test",
            login=ALICE,
            grant=GrantType.AUTHORIZATION_CODE,
            incoming=IncomingSettings(
                host=dovecot.host,
                port=dovecot.ports.imaps,
                security=Security.SSL,
            ),
        )
    )
    relay.store.put_grant(
        Grant(
            mailbox=name,
            access_token=Secret(answer["access_token"]),
            refresh_token=Secret(answer["refresh_token"]),
            expires_at=datetime.now(UTC) + timedelta(hours=1),
        )
    )


def listener(relay: Relay, kind: type[ImapRelay] | type[Pop3Relay], **options: Any) -> Any:
    """Another listener on the same store (TLS, not loopback, short timeouts...)."""
    options.setdefault("ca_file", str(relay.dovecot.ca_path))
    options.setdefault("counters", relay.counters)
    return kind(relay.store, relay.tokens, "127.0.0.1", free_port(), **options)


def relay_tls(cert: Path, key: Path, *, implicit: bool = False) -> RelayTls:
    return RelayTls(cert, key, implicit=implicit)
