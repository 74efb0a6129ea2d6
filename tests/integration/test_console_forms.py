"""The console's provider, mailbox, queue and transcript pages against the real app and a
real SQLite store (no background): forms saved through the same builders as `mailoauth
apply`, refusals in words beside the field with what was typed (never a secret), secrets
write-only on every page, grants marked when a change invalidates them, CSRF on every new
form, and every change in the audit log."""

from __future__ import annotations

import hashlib
import html
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mailoauth.models import GrantStatus, TranscriptLine
from mailoauth.store import NewMessage, QueueStatus
from mailoauth.web.app import create_app
from tests import store_samples as s
from tests.console_client import add_admin, client_for, login, token_of
from tests.integration.test_console_web import make_settings

pytestmark = pytest.mark.integration

TYPED_SECRET = "cs-TYPED-in-the-FORM-8h2Kq"
TYPED_PASSWORD = "pw-TYPED-in-the-FORM-Zr41"
TOKEN_URL = "https://id.example.com/token"


@pytest.fixture
def store(tmp_path):
    from mailoauth.store import open_store

    store = open_store(make_settings(tmp_path))
    add_admin(store)
    yield store
    store.close()


@pytest.fixture
async def client(tmp_path, store):
    app = create_app(make_settings(tmp_path), store, background=False)
    async with client_for(app) as client:
        await login(client)
        yield client


async def submit(client, page: str, action: str, data: dict[str, str]):
    """Post ``data`` to ``action`` as the browser does from ``page`` (with its token)."""
    html = (await client.get(page)).text
    return await client.post(action, data={"csrf_token": token_of(html), **data})


def generic(name: str = "corp", **extra: str) -> dict[str, str]:
    return {
        "name": name,
        "kind": "generic",
        "client_id": "mailoauth-console",
        "client_auth": "client_secret_post",
        "client_secret": TYPED_SECRET,
        "authorization_url": "https://id.example.com/authorize",
        "token_url": TOKEN_URL,
        "scopes": "mail offline_access",
        **extra,
    }


def smtp_mailbox(name: str = "desk", **extra: str) -> dict[str, str]:
    return {
        "name": name,
        "provider": "corp",
        "grant": "authorization_code",
        "login": "desk@example.com",
        "outgoing.transport": "smtp",
        "outgoing.host": "smtp.example.com",
        "outgoing.security": "starttls",
        "outgoing.port": "587",
        "incoming.transport": "",
        **extra,
    }


def audit_rows(html: str) -> list[tuple[str, str]]:
    return re.findall(r'<tr data-action="([\w.]+)">(.*?)</tr>', html, re.S)


async def every_page(client, store) -> list[str]:
    """The HTML of every console page about every stored object."""
    paths = ["/", "/providers", "/mailboxes", "/queue", "/audit", "/providers/_new"]
    paths += [f"/providers/{p.name}/edit" for p in store.list_providers()]
    for m in store.list_mailboxes():
        paths += [f"/mailboxes/{m.name}{tail}" for tail in ("", "/edit", "/debug", "/state")]
    pages = []
    for path in paths:
        page = await client.get(path)
        assert page.status_code == 200, (path, page.text[:300])
        pages.append(page.text)
    return pages


# --- providers --------------------------------------------------------------------------


async def test_a_provider_is_added_and_its_secret_is_never_shown_again(client, store):
    form = await client.get("/providers/_new?kind=generic")
    assert 'name="client_secret" type="password" value=""' in form.text
    added = await submit(client, "/providers/_new?kind=generic", "/providers/_new", generic())
    assert added.status_code == 303
    assert added.headers["location"] == "/providers"
    stored = store.get_provider("corp")
    assert stored.client_secret.reveal() == TYPED_SECRET
    assert stored.scopes == ("mail", "offline_access")
    listing = (await client.get("/providers")).text
    assert "Provider corp added." in listing
    assert 'data-provider="corp"' in listing
    edit = (await client.get("/providers/corp/edit")).text
    assert "<strong>Set</strong> — leave empty to keep it." in edit
    assert 'value="mailoauth-console"' in edit
    # Saved again with the secret box empty: the secret stays, the description changes.
    again = generic(client_secret="", description="Our IdP")
    saved = await submit(client, "/providers/corp/edit", "/providers/corp/edit", again)
    assert saved.status_code == 303
    assert store.get_provider("corp").client_secret.reveal() == TYPED_SECRET
    assert store.get_provider("corp").description == "Our IdP"
    for page in await every_page(client, store):
        assert TYPED_SECRET not in page
    rows = audit_rows((await client.get("/audit")).text)
    assert [action for action, _ in rows[:2]] == ["provider.update", "provider.create"]
    assert "changed: description" in rows[0][1]


async def test_a_refused_provider_says_why_beside_the_field_and_keeps_what_was_typed(client, store):
    data = generic(token_url="", client_id="typed-client-id")
    refused = await submit(client, "/providers/_new?kind=generic", "/providers/_new", data)
    assert refused.status_code == 400
    page = refused.text
    assert "Not saved." in page
    error = re.search(r'id="error-token_url">([^<]+)<', page)
    assert error, page
    assert "is required for generic providers" in error.group(1)
    assert 'value="typed-client-id"' in page  # what was typed stays
    assert TYPED_SECRET not in page  # but not the secret: typed again, or never shown
    with pytest.raises(LookupError):
        store.get_provider("corp")
    ms = {"name": "ms", "kind": "microsoft", "client_id": "x", "tenant": "not a tenant"}
    ms |= {"client_auth": "client_secret_post", "client_secret": TYPED_SECRET}
    refused = await submit(client, "/providers/_new?kind=microsoft", "/providers/_new", ms)
    assert refused.status_code == 400
    assert "is not a tenant" in re.search(r'id="error-tenant">([^<]+)<', refused.text).group(1)
    taken = await submit(client, "/providers/_new", "/providers/_new", generic())
    assert taken.status_code == 303
    twice = await submit(client, "/providers/_new", "/providers/_new", generic())
    assert twice.status_code == 400
    assert "exists already" in re.search(r'id="error-name">([^<]+)<', twice.text).group(1)


async def test_preset_endpoints_are_shown_read_only_with_the_redirect_uri_to_register(client):
    google = (await client.get("/providers/_new?kind=google")).text
    assert 'readonly value="https://accounts.google.com/o/oauth2/v2/auth"' in google
    assert "In production" in google  # the 7-day refresh token trap is explained
    assert '<code id="redirect-uri">http://127.0.0.1:8025/oauth/callback</code>' in google
    assert 'data-copy="#redirect-uri"' in google
    microsoft = (await client.get("/providers/_new?kind=microsoft")).text
    assert "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token" in microsoft
    assert "login.microsoftonline.us" in microsoft  # every cloud, for the script
    assert "SMTP.Send" in microsoft
    # Preset URLs the browser sends anyway are ignored: the model would refuse them.
    data = {"name": "g", "kind": "google", "client_id": "cid", "client_secret": TYPED_SECRET}
    data |= {"client_auth": "client_secret_post", "token_url": "https://evil.example/t"}
    saved = await submit(client, "/providers/_new", "/providers/_new", data)
    assert saved.status_code == 303


async def test_a_provider_in_use_is_not_deleted_and_the_page_says_by_whom(client, store):
    await submit(client, "/providers/_new", "/providers/_new", generic())
    await submit(client, "/mailboxes/_new", "/mailboxes/_new", smtp_mailbox())
    refused = await submit(client, "/providers/corp/edit", "/providers/corp/delete", {})
    assert refused.status_code == 409
    assert "used by mailbox(es) desk" in refused.text
    await submit(client, "/mailboxes/desk", "/mailboxes/desk/delete", {})
    deleted = await submit(client, "/providers/corp/edit", "/providers/corp/delete", {})
    assert deleted.status_code == 303
    assert store.list_providers() == []
    missing = await client.get("/providers/corp/edit")
    assert missing.status_code == 404
    assert "Provider 'corp' does not exist" in html.unescape(missing.text)


# --- mailboxes --------------------------------------------------------------------------


async def test_a_mailbox_is_added_with_ports_from_the_security_mode(client, store):
    await submit(client, "/providers/_new", "/providers/_new", generic())
    data = smtp_mailbox(**{"outgoing.port": "", "outgoing.security": "ssl"})
    data |= {"incoming.transport": "imap", "incoming.host": "imap.example.com"}
    data |= {"incoming.security": "ssl", "incoming.after_fetch": "move"}
    data |= {"incoming.move_to": "Done", "incoming.poll_interval": "10"}
    added = await submit(client, "/mailboxes/_new", "/mailboxes/_new", data)
    assert added.status_code == 303
    assert added.headers["location"] == "/mailboxes/desk"
    mailbox = store.get_mailbox("desk")
    assert mailbox.outgoing.port == 465
    assert mailbox.incoming.port == 993
    assert mailbox.incoming.after_fetch == "move:Done"
    assert mailbox.incoming.poll_interval == 10
    page = (await client.get("/mailboxes/desk")).text
    assert "Mailbox desk added." in page
    assert 'id="authorize"' in page
    assert 'data-state="not_authorized"' in page
    form = (await client.get("/mailboxes/_new")).text
    assert "&#34;smtp&#34;: {&#34;starttls&#34;: 587" in form  # the ports for the script
    bad = smtp_mailbox("desk2", **{"outgoing.port": "abc"})
    refused = await submit(client, "/mailboxes/_new", "/mailboxes/_new", bad)
    assert refused.status_code == 400
    words = re.search(r'id="error-outgoing.port">([^<]+)<', refused.text).group(1)
    assert "'abc' is not a whole number" in html.unescape(words)
    assert 'value="smtp.example.com"' in refused.text


async def test_a_password_is_write_only_and_goes_when_the_grant_stops_using_it(client, store):
    await submit(client, "/providers/_new", "/providers/_new", generic())
    data = smtp_mailbox(grant="password", password=TYPED_PASSWORD)
    await submit(client, "/mailboxes/_new", "/mailboxes/_new", data)
    assert store.get_mailbox("desk").password.reveal() == TYPED_PASSWORD
    edit = (await client.get("/mailboxes/desk/edit")).text
    assert "<strong>Set</strong> — leave empty to keep it." in edit
    kept = smtp_mailbox(grant="password", password="", display_name="Desk")
    await submit(client, "/mailboxes/desk/edit", "/mailboxes/desk/edit", kept)
    assert store.get_mailbox("desk").password.reveal() == TYPED_PASSWORD
    refused = await submit(
        client, "/mailboxes/desk/edit", "/mailboxes/desk/edit", kept | {"outgoing.port": "0"}
    )
    assert refused.status_code == 400
    for page in [refused.text, *await every_page(client, store)]:
        assert TYPED_PASSWORD not in page
    switched = smtp_mailbox(grant="authorization_code")
    await submit(client, "/mailboxes/desk/edit", "/mailboxes/desk/edit", switched)
    assert store.get_mailbox("desk").password is None


async def test_no_page_shows_a_stored_secret(client, store):
    s.store_everything(store)
    store.put_grant(s.grant("sales"))
    store.append_transcript("sales", [TranscriptLine(datetime.now(UTC), "1", "smtp", "C", "EHLO")])
    pages = await every_page(client, store)
    assert any("contoso-cert" in page for page in pages)
    for secret in s.secret_values():
        assert all(secret not in page for page in pages), secret
    for page in pages:  # and what the Content-Security-Policy would block is not there
        assert not re.search(r"<script(?![^>]*\bsrc=)", page)
        assert " style=" not in page
        assert not re.search(r" on[a-z]+=", page)


async def test_a_change_that_invalidates_the_grant_says_reauthorization_is_needed(client, store):
    await submit(client, "/providers/_new", "/providers/_new", generic())
    await submit(client, "/mailboxes/_new", "/mailboxes/_new", smtp_mailbox())
    connected = replace(s.grant("desk"), scopes=("mail", "offline_access"))
    store.put_grant(replace(connected, expires_at=datetime.now(UTC) + timedelta(hours=1)))
    # A new secret fixes a client; it leaves the grant alone.
    fixed = await submit(
        client, "/providers/corp/edit", "/providers/corp/edit", generic(client_secret="new-one")
    )
    assert "re-authorization" not in (await client.get(fixed.headers["location"])).text
    assert store.get_grant("desk").status is GrantStatus.CONNECTED
    # More scopes than were consented to: a new consent is needed.
    more = smtp_mailbox(scopes="mail offline_access imap")
    saved = await submit(client, "/mailboxes/desk/edit", "/mailboxes/desk/edit", more)
    page = (await client.get(saved.headers["location"])).text
    assert "Mailbox desk: re-authorization needed (it now asks for scope(s) imap)." in page
    assert 'data-state="needs_authorization"' in page
    grant = store.get_grant("desk")
    assert grant.status is GrantStatus.NEEDS_AUTHORIZATION
    assert grant.refresh_token is not None  # kept, never deleted silently
    dashboard = (await client.get("/")).text
    assert "the settings changed since it was authorized" in dashboard
    assert "authorize it again" in dashboard
    # Another client id at the provider invalidates the grants of all its mailboxes.
    store.put_grant(connected)
    other = await submit(
        client, "/providers/corp/edit", "/providers/corp/edit", generic(client_id="other-app")
    )
    listing = (await client.get(other.headers["location"])).text
    assert "re-authorization needed (the provider&#39;s client id changed)" in listing
    assert store.get_grant("desk").status is GrantStatus.NEEDS_AUTHORIZATION


# --- the mailbox page's buttons without the service's background ----------------------------


async def test_authorize_gives_the_consent_url_bound_to_this_session(client, store):
    await submit(client, "/providers/_new", "/providers/_new", generic())
    await submit(client, "/mailboxes/_new", "/mailboxes/_new", smtp_mailbox())
    page = (await client.get("/mailboxes/desk")).text
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)
    answer = await client.post("/mailboxes/desk/authorize", headers={"X-CSRF-Token": token})
    assert answer.status_code == 200
    url = answer.json()["url"]
    assert url.startswith("https://id.example.com/authorize?")
    assert "code_challenge_method=S256" in url
    assert "redirect_uri=http%3A%2F%2F127.0.0.1%3A8025%2Foauth%2Fcallback" in url
    state = re.search(r"[?&]state=([^&]+)", url).group(1)
    pending = store.take_pending(hashlib.sha256(state.encode()).hexdigest())
    cookie = client.cookies["mailoauth_session"]
    assert pending.session_hash == hashlib.sha256(cookie.encode()).hexdigest()
    refused = await client.post("/mailboxes/desk/authorize")  # no CSRF header
    assert refused.status_code == 403
    rows = audit_rows((await client.get("/audit")).text)
    assert rows[0][0] == "mailbox.authorize"
    assert "consent page opened" in rows[0][1]
    # Without the service's background, a test says so in words on the page.
    tested = await submit(client, "/mailboxes/desk", "/mailboxes/desk/test", {})
    assert tested.status_code == 200
    assert "background (token service, scheduler) is not running" in tested.text
    device = smtp_mailbox(grant="device_code")
    store.put_provider(replace(store.get_provider("corp"), device_url="https://id.example.com/d"))
    await submit(client, "/mailboxes/desk/edit", "/mailboxes/desk/edit", device)
    page = (await client.get("/mailboxes/desk")).text
    assert "<code>mailoauth authorize desk</code> shows the code" in page


# --- queue and transcript ------------------------------------------------------------------


async def test_the_queue_page_retries_and_deletes_and_shows_why_a_message_failed(client, store):
    s.store_everything(store)
    now = datetime.now(UTC)
    message = NewMessage("<1@x>", "sales@contoso.com", ("a@x.org", "b@x.org"), "Invoice", b"body")
    entry = store.queue_message("sales", message, now=now)
    store.claim_outbound("t", now=now, ttl=timedelta(minutes=1), limit=10)
    error = "550 5.1.1 mailbox unavailable"
    store.settle_outbound(entry.id, "t", QueueStatus.FAILED, now=now, error=error)
    page = (await client.get("/queue")).text
    row = re.search(rf'<tr data-entry="{entry.id}" data-status="failed">(.*?)</tr>', page, re.S)
    assert row, page
    assert "Invoice" in row.group(1)
    assert error in row.group(1)
    assert 'title="a@x.org, b@x.org">2</td>' in row.group(1)  # recipients
    assert "body" not in row.group(1)
    retried = await submit(client, "/queue", f"/queue/{entry.id}/retry", {})
    assert retried.status_code == 303
    assert store.get_outbound(entry.id).status is QueueStatus.QUEUED
    assert "queued again" in (await client.get("/queue")).text
    await submit(client, "/queue", f"/queue/{entry.id}/delete", {})
    assert store.list_outbound() == []
    purged = await submit(client, "/queue", "/queue/purge", {"days": "7"})
    assert purged.status_code == 303
    actions = [a for a, _ in audit_rows((await client.get("/audit")).text)]
    assert actions[:3] == ["queue.purge", "queue.delete", "queue.retry"]


async def test_the_transcript_page_switches_recording_and_clears(client, store):
    s.store_everything(store)
    line = TranscriptLine(datetime.now(UTC), "7", "smtp", "C", "AUTH XOAUTH2 [redacted 300 bytes]")
    store.append_transcript("sales", [line])
    page = (await client.get("/mailboxes/sales/debug")).text
    assert "smtp #7 C: AUTH XOAUTH2 [redacted 300 bytes]" in page
    assert '<strong id="debug-state">off</strong>' in page
    await submit(client, "/mailboxes/sales/debug", "/mailboxes/sales/debug", {"debug": "on"})
    assert store.get_mailbox("sales").debug is True
    # Saving the mailbox form keeps the switch (the form does not show it).
    await submit(
        client, "/mailboxes/sales/edit", "/mailboxes/sales/edit",
        {"provider": "contoso", "grant": "authorization_code", "login": "sales@contoso.com",
         "outgoing.transport": "smtp", "outgoing.host": "smtp.office365.com",
         "outgoing.security": "starttls", "display_name": "Sales desk"},
    )  # fmt: skip
    assert store.get_mailbox("sales").debug is True
    cleared = await submit(client, "/mailboxes/sales/debug", "/mailboxes/sales/debug/clear", {})
    assert (
        "Deleted 1 transcript line(s) of sales."
        in (await client.get(cleared.headers["location"])).text
    )
    assert store.read_transcript("sales") == []


# --- CSRF ------------------------------------------------------------------------------------


async def test_every_new_form_is_refused_without_its_csrf_token(client, store):
    s.store_everything(store)
    entry = store.queue_message(
        "sales", NewMessage("<2@x>", "sales@contoso.com", ("a@x.org",), "s", b"b"),
        now=datetime.now(UTC),
    )  # fmt: skip
    posts = {
        "/providers/_new": generic("new1"),
        "/providers/corp/edit": generic(description="changed"),
        "/providers/google-main/delete": {},
        "/mailboxes/_new": smtp_mailbox("new2"),
        "/mailboxes/legacy/edit": smtp_mailbox("legacy"),
        "/mailboxes/ops/delete": {},
        "/mailboxes/sales/authorize": {},
        "/mailboxes/sales/test": {},
        "/mailboxes/sales/send-test": {"to": "x@example.com"},
        "/mailboxes/sales/debug": {"debug": "on"},
        "/mailboxes/sales/debug/clear": {},
        f"/queue/{entry.id}/retry": {},
        f"/queue/{entry.id}/delete": {},
        "/queue/purge": {"days": "0"},
    }
    before = (store.list_providers(), store.list_mailboxes(), store.list_outbound())
    for path, data in posts.items():
        for token in (None, "forged-token"):
            form = data if token is None else {**data, "csrf_token": token}
            refused = await client.post(path, data=form)
            assert refused.status_code == 403, path
            assert "Request refused" in refused.text
    assert (store.list_providers(), store.list_mailboxes(), store.list_outbound()) == before
