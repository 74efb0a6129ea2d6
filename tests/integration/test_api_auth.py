"""REST API keys end to end: made by the real `mailoauth api-key` command, presented as
``Authorization: Bearer``, refused with 401 / 403 and the RFC 6750 challenge, scopes
nested (admin ⊃ send ⊃ read), revocation immediate, and the key's name — never the key —
in the service log."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mailoauth.web.api.calls import MAX_BODY
from tests.api_harness import LogLines, api_client
from tests.cli import Cli

pytestmark = pytest.mark.integration


@pytest.fixture
def log_lines() -> Iterator[LogLines]:
    handler = LogLines()
    logger = logging.getLogger("mailoauth")
    before = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)


async def test_no_key_a_wrong_key_and_a_key_without_the_scope(tmp_path: Path, log_lines):
    async with api_client(tmp_path / "home") as api:
        missing = await api.call("GET", "/status", scope=None)
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"] == 'Bearer realm="mailoauth"'
        assert "Authorization: Bearer" in missing.json()["message"]

        forged = api.keys["admin"][:-4] + "AAAA"  # the right prefix, a wrong secret
        for bad in (forged, "mo_00000000_" + "x" * 32, "not-a-key"):
            refused = await api.call(
                "GET", "/status", scope=None, headers={"Authorization": f"Bearer {bad}"}
            )
            assert refused.status_code == 401, bad
            assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
            assert "not valid" in refused.json()["message"]
        basic = await api.call(
            "GET", "/status", scope=None, headers={"Authorization": "Basic YTpi"}
        )
        assert basic.status_code == 401

        body = await api.fails("PUT", "/providers/g", 403, scope="send", json={})
        assert body["error"] == "forbidden"
        assert "'send'" in body["message"]
        assert "--scope admin" in body["message"]
        denied = api.seen[-1]
        assert 'error="insufficient_scope", scope="admin"' in denied.headers["WWW-Authenticate"]
        # The scope is checked before the body: a key without it learns nothing of the schema.
        await api.fails("POST", "/mailboxes/x/send", 403, scope="read", json={"bogus": 1})
    assert api.keys["admin"] not in log_lines.text
    assert "api key send: PUT /api/v1/providers/g -> 403" in log_lines.text
    assert "api (no valid key): GET /api/v1/status -> 401" in log_lines.text


async def test_scopes_nest_admin_over_send_over_read(tmp_path: Path):
    async with api_client(tmp_path / "home") as api:
        for scope in ("read", "send", "admin"):
            await api.ok("GET", "/providers", scope=scope)
            await api.ok("GET", "/queue", scope=scope)
        # send: past the scope check to the mailbox lookup (404), read: stopped at 403
        for scope, status in (("read", 403), ("send", 404), ("admin", 404)):
            await api.fails(
                "POST", "/mailboxes/nobody/send", status, scope=scope,
                json={"to": ["a@example.com"], "text": "x"},
            )  # fmt: skip
        for scope, status in (("read", 403), ("send", 403), ("admin", 404)):
            await api.fails("DELETE", "/providers/nothing", status, scope=scope)


async def test_a_cli_key_works_is_listed_with_its_last_use_and_revoking_stops_it(
    cli: Cli, tmp_path: Path, log_lines
):
    key = cli.ok("api-key", "add", "deploy", "--scope", "send").strip()
    assert key.startswith("mo_")
    assert len(key) == 3 + 8 + 1 + 32
    message = cli.fails("api-key", "add", "deploy", "--scope", "read")
    assert "exists already" in message

    async with api_client(cli.home) as api:  # (it adds keys named read, send, admin)
        auth = {"Authorization": f"Bearer {key}"}
        assert (await api.call("GET", "/status", scope=None, headers=auth)).status_code == 200
        listed = {k["name"]: k for k in json.loads(cli.ok("api-key", "list", "--json"))}
        deploy = listed["deploy"]
        assert deploy["scopes"] == ["send"]
        assert deploy["last_used_at"] is not None
        assert key.startswith(deploy["prefix"] + "_")

        assert "revoked" in cli.ok("api-key", "revoke", "deploy")
        after = await api.call("GET", "/status", scope=None, headers=auth)
        assert after.status_code == 401
    assert key not in log_lines.text
    assert "api key deploy: GET /api/v1/status" in log_lines.text
    table = cli.ok("api-key", "list")
    assert key[len(deploy["prefix"]) + 1 :] not in table  # the secret part is never shown
    (row,) = [line for line in table.splitlines() if line.startswith("deploy")]
    assert "active" not in row


async def test_the_key_is_checked_before_the_body_is_read_and_bodies_are_capped(
    tmp_path: Path,
):
    read: list[bytes] = []

    async def body() -> AsyncIterator[bytes]:
        read.append(b"chunk")
        yield b'{"kind": "google"}'

    async with api_client(tmp_path / "home") as api:
        refused = await api.call("PUT", "/providers/g", scope=None, content=body())
        assert refused.status_code == 401
        assert read == []  # not a byte of it was read

        huge = await api.call(
            "PUT", "/providers/g", content=b"{}", headers={"Content-Length": str(MAX_BODY + 1)}
        )
        assert huge.status_code == 413
        assert huge.json()["error"] == "too_large"

        async def endless() -> AsyncIterator[bytes]:
            chunk = b" " * 1024 * 1024
            for _ in range(MAX_BODY // len(chunk) + 2):
                yield chunk

        streamed = await api.call("PUT", "/providers/g", content=endless())
        assert streamed.status_code == 413
