"""Mail through the REST API with the service's lifespan running (token service, HTTP
client, scheduler), against the real test authorization server and Dovecot: a queued send
is stored before the 202 and then arrives; ``sync=true`` arrives before the 200; ``test``
walks the chain; ``fetch`` delivers into the configured Maildir; status shows the grant."""

from __future__ import annotations

import asyncio
import base64
import email
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.api_harness import Api, api_client
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import ALICE, BOB, PASSWORD, Dovecot

pytestmark = pytest.mark.integration


def inbox(dovecot: Dovecot, user: str) -> list[EmailMessage]:
    found = []
    for sub in ("new", "cur"):
        folder = dovecot.mail_dir(user) / sub
        if folder.is_dir():
            found += [
                email.message_from_bytes(p.read_bytes(), policy=policy.default)  # type: ignore[misc]
                for p in sorted(folder.iterdir())
            ]
    return found


async def arrives(dovecot: Dovecot, user: str, subject: str, timeout: float = 30) -> EmailMessage:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for message in inbox(dovecot, user):
            if message["Subject"] == subject:
                return message
        await asyncio.sleep(0.1)
    raise AssertionError(f"{subject!r} did not arrive for {user}")


async def set_up(api: Api, auth_server: AuthServer, dovecot: Dovecot, maildir: Path) -> None:
    """A generic provider at the test authorization server and ALICE's password-grant
    mailbox on Dovecot (submission + IMAPS, fetched mail to ``maildir``) — made through
    the API itself."""
    auth_server.add_mail_client()
    for user in (ALICE, BOB):
        auth_server.add_user(user, PASSWORD)
    provider: dict[str, Any] = {
        "kind": "generic",
        "client_id": "app",
        "client_secret": "app-secret",
        "token_url": auth_server.token_url,
        "scopes": ["mail"],
    }
    await api.ok("PUT", "/providers/test", 201, json=provider)
    mailbox: dict[str, Any] = {
        "provider": "test",
        "login": ALICE,
        "grant": "password",
        "password": PASSWORD,
        "display_name": "Alice",
        "outgoing": {"host": "127.0.0.1", "port": dovecot.ports.submission},
        "incoming": {
            "transport": "imap",
            "host": "127.0.0.1",
            "port": dovecot.ports.imaps,
            "deliver": f"maildir:{maildir}",
        },
    }
    await api.ok("PUT", "/mailboxes/alice", 201, json=mailbox)


async def test_send_queued_then_delivered_and_sync_send(
    auth_server: AuthServer, dovecot: Dovecot, tmp_path: Path
):
    async with api_client(tmp_path / "home", live=True, ca_file=str(dovecot.ca_path)) as api:
        await set_up(api, auth_server, dovecot, tmp_path / "fetched")
        queued = await api.ok(
            "POST", "/mailboxes/alice/send", 202, scope="send",
            json={"to": [f"Bob <{BOB}>"], "subject": "queued via API", "text": "hello",
                  "html": "<p>hello</p>"},
        )  # fmt: skip
        assert queued["status"] == "queued"
        assert queued["recipients"] == [BOB]
        # Invariant 1: stored when the 202 came (it may already be on its way).
        entry = await api.ok("GET", f"/queue/{queued['id']}", scope="read")
        assert entry["message_id"] == queued["message_id"]
        assert entry["status"] in ("queued", "sending", "sent")

        got = await arrives(dovecot, BOB, "queued via API")
        assert got["From"] == f"Alice <{ALICE}>"
        assert got["Message-ID"] == queued["message_id"]
        assert got.get_body(("html",)) is not None

        raw = b"To: nobody@example.org\r\nSubject: raw via API\r\n\r\nraw body\r\n"
        sent = await api.ok(
            "POST", "/mailboxes/alice/send?sync=true", 200, scope="send",
            json={"raw": base64.b64encode(raw).decode(), "to": [BOB]},
        )  # fmt: skip
        assert sent["status"] == "sent"
        assert sent["id"] is None
        # Sent synchronously: already in Dovecot when the answer came.
        assert [m for m in inbox(dovecot, BOB) if m["Subject"] == "raw via API"]

        refused = await api.fails(
            "POST", "/mailboxes/alice/send", 400, scope="send",
            json={"to": [BOB], "subject": "x\r\nBcc: victim@example.org", "text": "x"},
        )  # fmt: skip
        assert refused["field"] == "subject"
        spoofed = await api.fails(
            "POST", "/mailboxes/alice/send", 400, scope="send",
            json={"raw": base64.b64encode(b"From: ceo@example.com\r\nTo: b@example.org\r\n"
                                          b"\r\nx\r\n").decode()},
        )  # fmt: skip
        assert "ceo@example.com is not one of mailbox 'alice'" in spoofed["message"]

        for _ in range(300):  # the queued one is settled as sent
            if (await api.ok("GET", f"/queue/{queued['id']}", scope="read"))["status"] == "sent":
                break
            await asyncio.sleep(0.1)
        assert api.seen[-1].json()["status"] == "sent"
    assert PASSWORD not in api.everything_seen()
    assert "app-secret" not in api.everything_seen()


async def test_test_fetch_status_and_authorize(
    auth_server: AuthServer, dovecot: Dovecot, tmp_path: Path
):
    maildir = tmp_path / "fetched"
    async with api_client(tmp_path / "home", live=True, ca_file=str(dovecot.ca_path)) as api:
        await set_up(api, auth_server, dovecot, maildir)
        authorized = await api.ok("POST", "/mailboxes/alice/authorize")
        assert authorized["status"] == "connected"
        assert authorized["expires_at"]

        checked = await api.ok(
            "POST", "/mailboxes/alice/test", json={"send_to": ALICE, "debug": True}
        )
        assert checked["ok"], checked
        names = [step["name"] for step in checked["steps"]]
        assert names == ["token", "smtp", "send", "imap"]
        await arrives(dovecot, ALICE, "mailoauth test message from alice")

        fetched = await api.ok("POST", "/mailboxes/alice/fetch")
        assert fetched["ok"]
        assert fetched["folder"] == "INBOX"
        # The scheduler polls this mailbox too: whichever ran first delivered it.
        for _ in range(100):
            if (maildir / "new").is_dir() and any((maildir / "new").iterdir()):
                break
            await asyncio.sleep(0.1)
        assert any((maildir / "new").iterdir())

        status = await api.ok("GET", "/mailboxes/alice/status", scope="read")
        assert status["state"] == "connected"
        assert status["expires_at"] > status["refreshed_at"]
        service = await api.ok("GET", "/status", scope="read")
        assert service["mailboxes"]["connected"] == 1
        assert service["scheduler"]["started_at"]

        denied = await api.fails("POST", "/mailboxes/alice/test", 403, scope="send")
        assert denied["error"] == "forbidden"

        transcript = await api.ok("GET", "/mailboxes/alice/transcript")
        assert any("AUTHENTICATE" in line["text"] for line in transcript)  # IMAP login
        for path in ("/mailboxes", "/mailboxes/alice", "/providers/test", "/queue"):
            await api.ok("GET", path, scope="read")
        grant = api.store.get_grant("alice")
        assert grant is not None
        assert grant.access_token is not None
    seen = api.everything_seen()
    for secret in (PASSWORD, "app-secret", grant.access_token.reveal()):
        assert secret not in seen
    if grant.refresh_token is not None:
        assert grant.refresh_token.reveal() not in seen
