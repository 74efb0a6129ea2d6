"""Providers and mailboxes through the REST API on a real SQLite store: PUT bodies are
`mailoauth apply` tables, checked by the same builders; secrets are write-only (never in
any answer, kept when left out, removed with null); errors are one JSON shape with the
status a client can branch on and words it can act on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.api_harness import api_client

pytestmark = pytest.mark.integration

CLIENT_SECRET = "generic-client-secret-f00d"
PASSWORD = "mailbox-password-b33f"
SA_KEY_MARKER = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC"  # a line of the PEM body below

GENERIC: dict[str, Any] = {
    "kind": "generic",
    "client_id": "app",
    "client_secret": CLIENT_SECRET,
    "token_url": "https://login.example.net/token",
    "authorization_url": "https://login.example.net/authorize",
    "scopes": ["mail", "offline_access"],
    "client_secret_expires": "2031-01-31",
}
PASSWORD_MAILBOX: dict[str, Any] = {
    "provider": "corp",
    "login": "desk@example.net",
    "grant": "password",
    "password": PASSWORD,
    "outgoing": {"host": "smtp.example.net"},
    "incoming": {"transport": "imap", "host": "imap.example.net", "poll_interval": 10},
}


async def test_provider_round_trip_with_a_write_only_secret(tmp_path: Path):
    async with api_client(tmp_path / "home") as api:
        created = await api.ok("PUT", "/providers/corp", 201, json=GENERIC)
        assert created["change"] == "created"
        shown = created["provider"]
        assert shown["client_secret"] == {"set": True}
        assert shown["private_key"] == {"set": False}
        assert shown["endpoints"]["token_url"] == GENERIC["token_url"]
        assert shown["effective_redirect_uri"] == "http://127.0.0.1:8025/oauth/callback"
        assert shown["client_secret_expires"] == "2031-01-31"

        again = await api.ok("PUT", "/providers/corp", json=GENERIC)
        assert again["change"] == "unchanged"

        # GET, change one field, PUT it back without the secret: only that field changes.
        fetched = await api.ok("GET", "/providers/corp", scope="read")
        edited = {k: v for k, v in fetched.items() if k in GENERIC and k != "client_secret"}
        edited["description"] = "the corporate IdP"
        updated = await api.ok("PUT", "/providers/corp", json=edited)
        assert updated["change"] == "updated"
        assert updated["provider"]["client_secret"] == {"set": True}
        stored = api.store.get_provider("corp")
        assert stored.client_secret is not None
        assert stored.client_secret.reveal() == CLIENT_SECRET

        # Going public (client_auth none) drops the kept secret instead of refusing it.
        public = await api.ok("PUT", "/providers/corp", json={**edited, "client_auth": "none"})
        assert public["provider"]["client_secret"] == {"set": False}

        listed = await api.ok("GET", "/providers", scope="read")
        assert [p["name"] for p in listed] == ["corp"]
        await api.ok("DELETE", "/providers/corp", 204)
        body = await api.fails("GET", "/providers/corp", 404, scope="read")
        assert body["error"] == "not_found"
        assert "GET /api/v1/providers" in body["message"]
    assert CLIENT_SECRET not in api.everything_seen()


async def test_mailbox_round_trip_and_no_secret_in_any_answer(tmp_path: Path):
    async with api_client(tmp_path / "home") as api:
        await api.ok("PUT", "/providers/corp", 201, json=GENERIC)
        created = await api.ok("PUT", "/mailboxes/desk", 201, json=PASSWORD_MAILBOX)
        box = created["mailbox"]
        assert box["password"] == {"set": True}
        assert box["username"] == "desk@example.net"  # filled in from login, as in TOML
        assert box["outgoing"]["port"] == 587  # from the security mode
        assert box["incoming"]["port"] == 993
        assert box["effective_scopes"] == ["mail", "offline_access"]
        assert box["status"] == "not_authorized"

        # Without the password, the stored one is kept; switching the grant drops it.
        kept = {k: v for k, v in PASSWORD_MAILBOX.items() if k != "password"}
        assert (await api.ok("PUT", "/mailboxes/desk", json=kept))["change"] == "unchanged"
        moved = await api.ok("PUT", "/mailboxes/desk", json={**kept, "grant": "client_credentials"})
        assert moved["mailbox"]["password"] == {"set": False}
        await api.ok("PUT", "/mailboxes/desk", json=PASSWORD_MAILBOX)

        status = await api.ok("GET", "/mailboxes/desk/status", scope="read")
        assert status["state"] == "not_authorized"
        assert status["client_secret_expires"] == "2031-01-31"
        assert status["client_secret_expires_in_days"] > 365
        assert status["next_poll"] is None  # the scheduler does not run here

        service = await api.ok("GET", "/status", scope="read")
        assert service["mailboxes"]["not_authorized"] == 1
        assert service["needs_attention"] == ["desk"]
        assert service["scheduler"] is None

        for path in ("/providers", "/providers/corp", "/mailboxes", "/mailboxes/desk"):
            await api.ok("GET", path, scope="read")
        conflict = await api.fails("DELETE", "/providers/corp", 409)
        assert conflict["error"] == "in_use"
        assert "desk" in conflict["message"]
        await api.ok("DELETE", "/mailboxes/desk", 204)
    seen = api.everything_seen()
    for secret in (CLIENT_SECRET, PASSWORD, *api.keys.values()):
        assert secret not in seen


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({**GENERIC, "tokn_url": "x"}, "tokn_url", "did you mean 'token_url'"),
        ({**GENERIC, "scopes": "mail"}, "scopes", "valid list"),
        ({**GENERIC, "token_url": None}, "token_url", "is required for generic providers"),
        ({**GENERIC, "token_url": "http://login.example.net/t"}, "token_url", "https"),
        ({**GENERIC, "client_secret": "env:SECRET"}, "client_secret", "send the value itself"),
        ({**GENERIC, "client_secret_expires": "31.01.2031"}, "client_secret_expires", "2027-05-01"),
        ({"client_id": "app"}, "kind", "is required"),
    ],
)
async def test_bad_provider_bodies_name_the_field_and_the_fix(
    tmp_path: Path, body: dict[str, Any], field: str, words: str
):
    async with api_client(tmp_path / "home") as api:
        error = await api.fails("PUT", "/providers/corp", 400, json=body)
        assert error["field"] == field, error
        assert words in error["message"], error
        assert error["error"] in ("invalid", "invalid_request")
        assert api.store.list_providers() == []


async def test_bad_requests_are_400_or_404_never_500(tmp_path: Path):
    async with api_client(tmp_path / "home") as api:
        broken = await api.fails(
            "PUT",
            "/providers/p",
            400,
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        )
        assert "not valid JSON" in broken["message"]
        assert "missing" in (await api.fails("PUT", "/providers/p", 400))["message"]
        await api.fails("PUT", "/providers/bad name", 400, json=GENERIC)
        await api.fails("PUT", "/mailboxes/m", 400, json={**PASSWORD_MAILBOX, "provider": "none"})
        await api.fails("GET", "/queue/99999999999999999999999", 400)
        await api.fails("GET", "/queue/12", 404)
        await api.fails("POST", "/queue/purge", 400, json={})
        await api.fails("GET", "/mailboxes/none/status", 404)
        outgoing = await api.fails(
            "PUT", "/mailboxes/m", 400,
            json={**PASSWORD_MAILBOX, "provider": "x", "outgoing": {"port": "587"}},
        )  # fmt: skip
        assert outgoing["field"] == "outgoing.port"
        assert api.seen  # every one above was an answer, none a server error
        assert all(r.status_code < 500 for r in api.seen)
