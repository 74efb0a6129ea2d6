"""The console against the real app and a real SQLite store: first-run setup, login,
sessions, CSRF on every form, the login rate limit, the dashboard and the audit log."""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from mailoauth.config import Settings
from mailoauth.models import GrantStatus
from mailoauth.store import NewMessage, open_store
from mailoauth.web.app import create_app
from mailoauth.web.console import setup_link
from tests import store_samples as s
from tests.console_client import PASSWORD, add_admin, client_for, login, post_form, token_of
from tests.stores import sqlite_settings
from tests.unit import test_console_store as rows

pytestmark = pytest.mark.integration

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def make_settings(tmp_path, base_url: str = "http://127.0.0.1:8025") -> Settings:
    home = tmp_path / "home"
    return sqlite_settings(home, base_url=base_url)


@pytest.fixture
def store(tmp_path):
    store = open_store(make_settings(tmp_path))
    yield store
    store.close()


@pytest.fixture
def app(tmp_path, store):
    return create_app(make_settings(tmp_path), store, background=False)


@pytest.fixture
async def client(app):
    async with client_for(app) as client:
        yield client


def later(app, delta: timedelta) -> None:
    """Move the console's clock forward."""
    then = datetime.now(UTC) + delta
    app.state.console.clock = lambda: then


# --- first run ------------------------------------------------------------------------


async def test_the_setup_link_creates_the_first_admin_once(app, client, store):
    assert (await client.get("/", follow_redirects=False)).headers["location"] == "/login?next=/"
    assert "No admin exists yet" in (await client.get("/login")).text
    link = setup_link(app)
    assert link.startswith("http://127.0.0.1:8025/setup?token=")
    path = link.removeprefix("http://127.0.0.1:8025")
    page = await client.get(path)
    assert page.status_code == 200
    assert "Create the first admin" in page.text
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
    form = {"csrf_token": token_of(page.text), "token": token, "name": "alice"}
    done = await client.post("/setup", data={**form, "password": PASSWORD, "confirm": PASSWORD})
    assert done.status_code == 303
    assert done.headers["location"] == "/"
    dashboard = await client.get("/")
    assert dashboard.status_code == 200
    assert "Welcome, alice" in dashboard.text

    again = await client.get(path)
    assert again.status_code == 410
    assert "no longer works" in again.text
    reuse = await client.post("/setup", data={**form, "name": "mallory", "password": PASSWORD})
    assert reuse.status_code == 410
    assert [a.name for a in store.list_admins()] == ["alice"]
    assert setup_link(app) is None  # an admin exists: serve prints no link
    actions = [(e.action, e.target) for e in store.list_audit()]
    assert ("admin.create", "alice") in actions
    assert ("login", "alice") in actions


async def test_a_setup_link_dies_after_an_hour_and_a_wrong_token_does_nothing(app, client):
    link = setup_link(app)
    wrong = await client.get("/setup?token=" + "A" * 43)
    assert wrong.status_code == 410
    later(app, timedelta(hours=1, seconds=1))
    expired = await client.get(link.removeprefix("http://127.0.0.1:8025"))
    assert expired.status_code == 410


async def test_setup_says_what_is_wrong_with_the_password(app, client, store):
    path = setup_link(app).removeprefix("http://127.0.0.1:8025")
    page = await client.get(path)
    token = re.search(r'name="token" value="([^"]+)"', page.text).group(1)
    base = {"csrf_token": token_of(page.text), "token": token, "name": "alice"}
    short = await client.post("/setup", data={**base, "password": "short", "confirm": "short"})
    assert short.status_code == 400
    assert "use at least 12" in short.text
    differ = await client.post("/setup", data={**base, "password": PASSWORD, "confirm": "x" * 20})
    assert differ.status_code == 400
    assert "The two passwords differ" in differ.text
    assert store.count_admins() == 0
    assert (await client.get(path)).status_code == 200  # still usable


# --- login and sessions ---------------------------------------------------------------


async def test_a_good_login_opens_a_session_and_bad_ones_do_not(client, store):
    add_admin(store)
    wrong = await login(client, password="not the password at all")
    unknown = await login(client, name="mallory")
    for refused in (wrong, unknown):
        assert refused.status_code == 401
        assert "Wrong admin name or password" in refused.text
        assert "mailoauth_session" not in refused.headers.get("set-cookie", "")
    ok = await login(client, next="/audit")
    assert ok.status_code == 303
    assert ok.headers["location"] == "/audit"
    cookie = next(c for c in ok.headers.get_list("set-cookie") if "mailoauth_session=" in c)
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "samesite=lax", "path=/"} <= flags
    assert "secure" not in flags  # http base URL
    value = client.cookies["mailoauth_session"]
    stored = store.get_web_session(hashlib.sha256(value.encode()).hexdigest())
    assert stored is not None
    assert stored.admin == "alice"
    assert store.get_web_session(value) is None  # only the hash is kept
    assert (await client.get("/")).status_code == 200


async def test_the_cookie_is_secure_behind_https(tmp_path, store):
    add_admin(store)
    https = create_app(make_settings(tmp_path, "https://mail.example.com"), store, background=False)
    async with client_for(https, "https://testserver") as client:
        ok = await login(client)
    cookie = next(c for c in ok.headers.get_list("set-cookie") if "mailoauth_session=" in c)
    assert "secure" in cookie.lower()


async def test_login_goes_only_to_pages_of_this_site(client, store):
    add_admin(store)
    ok = await login(client, next="https://evil.example/")
    assert ok.headers["location"] == "/"


async def test_every_page_asks_for_a_login(client):
    for path in ("/", "/audit", "/providers", "/mailboxes", "/queue"):
        page = await client.get(path, follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"] == f"/login?next={path}"


async def test_logout_ends_the_session_on_the_server(client, store):
    add_admin(store)
    await login(client)
    cookie = client.cookies["mailoauth_session"]
    out = await post_form(client, "/", "/logout")
    assert out.status_code == 303
    assert out.headers["location"] == "/login"
    assert store.get_web_session(hashlib.sha256(cookie.encode()).hexdigest()) is None
    client.cookies.set("mailoauth_session", cookie)  # a copy of the old cookie is worthless
    assert (await client.get("/", follow_redirects=False)).status_code == 303


async def test_a_session_idle_for_12_hours_ends(app, client, store):
    add_admin(store)
    await login(client)
    later(app, timedelta(hours=12, minutes=1))
    assert (await client.get("/", follow_redirects=False)).status_code == 303


# --- CSRF -----------------------------------------------------------------------------


def unsafe_routes(app) -> list[tuple[str, str]]:
    """Every state-changing route outside the REST API, whoever added it and however
    (routers included into the app, mounts)."""
    found = []

    def walk(routes, prefix: str) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)  # FastAPI's include_router
            if included is not None:
                walk(included.routes, prefix + route.include_context.prefix)
                continue
            path = prefix + getattr(route, "path", "")
            if getattr(route, "routes", None):  # a Mount of routes
                walk(route.routes, path)
                continue
            if path.startswith("/api/"):
                continue
            for method in sorted((getattr(route, "methods", None) or set()) & UNSAFE):
                found.append((method, re.sub(r"\{[^}]+\}", "x", path)))

    walk(app.routes, "")
    return found


async def test_every_form_without_a_good_csrf_token_is_refused(app, client, store):
    routes = unsafe_routes(app)
    assert {("POST", "/login"), ("POST", "/logout"), ("POST", "/setup")} <= set(routes)
    add_admin(store)
    for method, path in routes:  # not logged in
        refused = await client.request(method, path, data={"name": "alice", "password": PASSWORD})
        assert refused.status_code == 403, (method, path)
        assert "security token" in refused.text
    await login(client)
    foreign = (await client_for(app).get("/login")).text  # a token from another browser
    for method, path in routes:
        for extra in ({}, {"csrf_token": "forged"}, {"csrf_token": token_of(foreign)}):
            refused = await client.request(method, path, data=extra)
            assert refused.status_code == 403, (method, path, extra)
            assert "Request refused" in refused.text
    assert (await client.get("/")).status_code == 200  # the session survived all that
    with_header = await client.post(
        "/logout", headers={"X-CSRF-Token": token_of((await client.get("/")).text)}
    )
    assert with_header.status_code == 303  # scripts send the token as a header


# --- rate limit -----------------------------------------------------------------------


async def test_five_failed_logins_lock_out_the_address_and_the_name(app, client, store):
    add_admin(store)
    answers = [await login(client, password=f"wrong password {i}") for i in range(5)]
    assert [a.status_code for a in answers] == [401, 401, 401, 401, 429]
    locked = await login(client)  # even the right password waits
    assert locked.status_code == 429
    assert 0 < int(locked.headers["retry-after"]) <= 300
    assert "Try again in" in locked.text
    async with client_for(app, address="198.51.100.7") as elsewhere:
        assert (await login(elsewhere)).status_code == 429  # the name is locked too
        add_admin(store, "bob")
        assert (await login(elsewhere, name="bob")).status_code == 303


# --- dashboard, audit log, headers -----------------------------------------------------


def fill_store(store) -> None:
    soon = date.today() + timedelta(days=10)
    store.put_provider(replace(s.microsoft(), client_secret_expires=soon))
    store.put_provider(s.generic())
    store.put_mailbox(s.smtp_imap())  # sales
    store.put_mailbox(s.password_grant())  # legacy, with a password
    store.put_grant(replace(s.grant("sales"), expires_at=datetime.now(UTC) + timedelta(hours=1)))
    refused = replace(
        s.grant("legacy"), status=GrantStatus.NEEDS_AUTHORIZATION, last_error="invalid_grant"
    )
    store.put_grant(refused)
    message = NewMessage("<1@x>", "sales@contoso.com", ("b@example.com",), "hi", b"body")
    store.queue_message("sales", message, now=datetime.now(UTC))


async def test_the_dashboard_shows_every_mailbox_state_and_never_a_secret(client, store):
    add_admin(store)
    fill_store(store)
    await login(client)
    html = (await client.get("/")).text
    sales = re.search(r'<tr data-mailbox="sales" data-state="(\w+)">(.*?)</tr>', html, re.S)
    legacy = re.search(r'<tr data-mailbox="legacy" data-state="(\w+)">(.*?)</tr>', html, re.S)
    assert sales.group(1) == "connected"
    assert "1 waiting" in sales.group(2)
    assert re.search(r"in (59|60) min", sales.group(2))  # the token's expiry
    assert legacy.group(1) == "needs_authorization"
    assert "invalid_grant" in legacy.group(2)
    assert "fix its credentials" in legacy.group(2)
    assert "Provider contoso: its client secret expires on" in html
    pages = [html] + [(await client.get(p)).text for p in ("/audit", "/providers", "/login")]
    for secret in s.secret_values():
        assert all(secret not in page for page in pages), secret


async def test_the_audit_log_records_logins_and_logouts_without_passwords(client, store):
    add_admin(store)
    await login(client, name="<i>mallory</i>")  # shown as text, never as markup
    await login(client, password="typed-by-mistake-1234")
    await login(client)
    await post_form(client, "/", "/logout")
    await login(client)
    page = (await client.get("/audit")).text
    rows = re.findall(r'<tr data-action="([\w.]+)">(.*?)</tr>', page, re.S)
    assert [action for action, _ in rows] == [
        "login",
        "logout",
        "login",
        "login.failed",
        "login.failed",
    ]
    assert "&lt;i&gt;mallory&lt;/i&gt;" in page
    assert "<i>mallory" not in page
    assert "192.0.2.10" in rows[-2][1]
    assert "alice" in rows[-2][1]
    assert "typed-by-mistake-1234" not in page
    assert PASSWORD not in page


async def test_pages_carry_the_security_headers_and_no_inline_script(client, store):
    add_admin(store)
    await login(client)
    for path in ("/", "/audit", "/login", "/providers"):
        page = await client.get(path)
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert page.headers["cache-control"] == "no-store"
        assert not re.search(r"<script(?![^>]*\bsrc=)", page.text)  # every script is a file
        assert " style=" not in page.text
        assert "<style" not in page.text
    for asset in ("/static/console.js", "/static/console.css"):
        served = await client.get(asset)
        assert served.status_code == 200
        assert served.headers["x-content-type-options"] == "nosniff"


# --- the console's rows on PostgreSQL ---------------------------------------------------


@pytest.fixture
def pg_store(tmp_path, postgres_url):
    settings = replace(make_settings(tmp_path), database_url=postgres_url)
    store = open_store(settings)
    yield store
    store.close()


@pytest.mark.parametrize(
    "check",
    [
        rows.test_the_first_admin_is_created_only_while_none_exists,
        rows.test_a_new_password_ends_every_session_of_that_admin_only,
        rows.test_pruning_removes_idle_and_ended_sessions_only,
        rows.test_the_audit_log_reads_newest_first_in_pages,
        rows.test_the_queue_per_mailbox_counts_waiting_and_failed_and_the_last_send,
    ],
    ids=lambda check: check.__name__.removeprefix("test_"),
)
def test_the_console_rows_work_on_postgresql(pg_store, check):
    check(pg_store)
