"""``mailoauth.mail.send`` / ``fetch`` / ``check`` over Microsoft Graph and the Gmail API,
the way the CLI and the service call them: mailboxes in a real store, tokens from the
token service (a stored grant, since Google and Microsoft cannot be reached here), the
API host taken from the mailbox's settings, transcripts kept in the store — against the
HTTPS double (tests/peers/mailapi.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest

from mailoauth.mail import check, fetch, send
from mailoauth.mail.connect import tls_context
from mailoauth.mail.fetched import FetchedMessage
from mailoauth.models import Grant, IncomingSettings, Mailbox, OutgoingSettings, Provider
from mailoauth.oauth.tokens import TokenService
from mailoauth.providers import GrantType, ProviderKind
from mailoauth.secret import Secret
from mailoauth.store import SqlStore
from tests.peers.mailapi import MailApi
from tests.stores import open_sqlite

pytestmark = pytest.mark.integration

USER = "desk@contoso.com"
TOKEN = "eyJ0eXAi.graph-or-gmail-access-token.sig"


@pytest.fixture
def store(tmp_path: Path) -> SqlStore:
    home = tmp_path / "home"
    store = open_sqlite(home)
    yield store  # type: ignore[misc]
    store.close()


@pytest.fixture
async def http(mail_api: MailApi) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=tls_context(str(mail_api.ca_path))) as client:
        yield client


def setup(store: SqlStore, mail_api: MailApi, kind: str, grant: GrantType) -> str:
    transport = "graph" if kind == "microsoft" else "gmail_api"
    provider = (
        Provider(name="p", kind=ProviderKind.MICROSOFT, client_id="id", tenant="contoso.com",
                 client_secret=Secret("s"))
        if kind == "microsoft"
        else Provider(name="p", kind=ProviderKind.GOOGLE, client_id="id", client_secret=Secret("s"))
    )  # fmt: skip
    api = {"transport": transport, "host": "127.0.0.1", "port": mail_api.port}
    store.put_provider(provider)
    store.put_mailbox(
        Mailbox(
            name="desk",
            provider="p",
            login=USER,
            grant=grant,
            display_name="Desk",
            debug=True,
            outgoing=OutgoingSettings(**api),  # type: ignore[arg-type]
            incoming=IncomingSettings(**api, after_fetch="seen"),  # type: ignore[arg-type]
        )
    )
    now = datetime.now(UTC)
    store.put_grant(
        Grant(mailbox="desk", access_token=Secret(TOKEN), expires_at=now + timedelta(hours=1))
    )
    mail_api.allow(TOKEN, None if grant is GrantType.CLIENT_CREDENTIALS else USER)
    return transport


def message() -> EmailMessage:
    m = EmailMessage()
    m["To"] = "customer@example.org"
    m["Subject"] = "over the API"
    m.set_content("hello\n")
    return m


@pytest.mark.parametrize(
    ("kind", "grant"),
    [
        ("microsoft", GrantType.AUTHORIZATION_CODE),  # /me/sendMail
        ("microsoft", GrantType.CLIENT_CREDENTIALS),  # /users/{login}/sendMail
        ("google", GrantType.AUTHORIZATION_CODE),
    ],
)
async def test_send_fetch_and_check_over_the_api(store, mail_api, http, kind, grant):
    transport = setup(store, mail_api, kind, grant)
    tokens = TokenService(store, http)
    sent = await send(store, tokens, "desk", message(), http=http)
    box = mail_api.graph(USER) if kind == "microsoft" else mail_api.gmail(USER)
    (raw,) = box.sent()
    assert b"Subject: over the API" in raw
    assert f"From: Desk <{USER}>".encode() in raw
    assert sent["Message-ID"].encode() in raw

    box.deliver(b"Subject: incoming one\r\n\r\nbody\r\n")
    got: list[FetchedMessage] = []

    async def deliver(fetched: FetchedMessage) -> None:
        got.append(fetched)

    report = await fetch(store, tokens, "desk", http=http, deliver=deliver)
    assert [m.data for m in got] == [b"Subject: incoming one\r\n\r\nbody\r\n"]
    assert report.delivered == [got[0].uid]
    again = await fetch(store, tokens, "desk", http=http, deliver=deliver)
    assert again.delivered == []  # remembered in the store
    assert store.fetch_seen("desk", report.folder) == {got[0].uid}

    steps = await check(store, tokens, store.get_mailbox("desk"), http=http)
    assert [(s.name, s.ok) for s in steps] == [("token", True), (transport, True)]

    transcript = "\n".join(line.render() for line in store.read_transcript("desk"))
    assert "sendMail" in transcript or "messages/send" in transcript
    assert TOKEN not in transcript
