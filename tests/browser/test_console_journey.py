"""The admin's journeys through the console in a real Chromium, against the real `mailoauth
serve`, the real authorization server (consent on its own page) and the real Dovecot.

1. From nothing to a sent test mail: an admin made with the CLI logs in, adds a provider
   pointing at the authorization server and a mailbox on Dovecot, clicks Authorize,
   allows access in the popup — the popup says Connected and the console page says
   connected without a reload —, tests the connection, sends a test mail that arrives in
   Dovecot, and finds the dashboard, the queue and the audit log up to date.
2. What goes wrong is said in words: consent denied, then a wrong client secret refused
   by the token endpoint (invalid_client); the mailbox stays not connected until the
   provider gets the right secret.

Screenshots of each page go to tests/browser/artifacts (and docs/images with
MAILOAUTH_DOCS_SCREENSHOTS=1; docs/console.md shows them).
"""

from __future__ import annotations

import email
import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.browser.chromium import PageLog
from tests.browser.shots import shot
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import ALICE, BOB, PASSWORD, Dovecot
from tests.service import Service

ADMIN = "ops"
ADMIN_PASSWORD = "correct horse battery staple"
CLIENT_SECRET = "console-client-SECRET-7Qm2"
WRONG_SECRET = "not-the-client-SECRET-0000"
NO_RELOAD = "window.mailoauthJourney"


@pytest.fixture
def console(start_service, auth_server: AuthServer) -> Service:
    return _console(start_service, auth_server, {})


@pytest.fixture
def console_on_dovecot(start_service, auth_server: AuthServer, dovecot: Dovecot) -> Service:
    return _console(start_service, auth_server, {"MAILOAUTH_CA_FILE": str(dovecot.ca_path)})


def _console(start_service, auth_server: AuthServer, env: dict[str, str]) -> Service:
    """The service with one admin (made with the CLI), and the provider's app registered
    at the authorization server with the service's exact redirect URI."""
    service: Service = start_service(env=env)
    service.cli("admin", "create", ADMIN, "--password-stdin", stdin=ADMIN_PASSWORD)
    for user in (ALICE, BOB):
        auth_server.add_user(user, PASSWORD)
    auth_server.add_client(
        "console-app",
        auth_method="client_secret_post",
        secret=CLIENT_SECRET,
        redirect_uris=[service.url("/oauth/callback")],
    )
    auth_server.configure(consent="page")
    return service


def picture(page: Page, name: str) -> None:
    """A screenshot of what the viewport (1280x800) shows: small enough for the docs, and
    a full-page one makes Chromium scroll at the next click (which then misses)."""
    shot(page, name, full_page=False)


def log_in(page: Page, service: Service, *, screenshot: bool = False) -> None:
    page.goto(service.url("/"))
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    page.get_by_label("Admin name").fill(ADMIN)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    if screenshot:
        picture(page, "login")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()


def add_provider(
    page: Page, service: Service, auth_server: AuthServer, secret: str, *, screenshot: bool = False
) -> None:
    page.goto(service.url("/providers"))
    page.get_by_role("link", name="Add other OAuth2 server").click()
    expect(page.locator("#redirect-uri")).to_have_text(service.url("/oauth/callback"))
    page.get_by_label("Name", exact=True).fill("testauth")
    page.get_by_label("Description", exact=True).fill("The test authorization server")
    page.get_by_label("Authorization URL", exact=True).fill(auth_server.authorize_url)
    page.get_by_label("Token URL", exact=True).fill(auth_server.token_url)
    page.get_by_label("Scopes", exact=True).fill("mail offline_access")
    page.get_by_label("Client id", exact=True).fill("console-app")
    page.get_by_label("Client secret", exact=True).fill(secret)
    expect(page.get_by_label("Tenant")).to_be_hidden()  # only for Microsoft
    if screenshot:
        page.evaluate("window.scrollTo(0, 0)")
        picture(page, "provider-form")
    page.get_by_role("button", name="Add provider").click()
    expect(page.locator(".notice")).to_have_text("Provider testauth added.")


def authorize_in_popup(page: Page, decision: str) -> Page:
    """Click Authorize, answer the provider's consent page in the popup with
    ``decision`` (Allow / Deny); the popup, now on the service's result page."""
    with page.expect_popup() as opened:
        page.get_by_role("button", name="Authorize").click()
    popup = opened.value
    expect(popup.get_by_role("heading", name="Allow access?")).to_be_visible()
    expect(popup.locator("#who")).to_have_text(ALICE)
    popup.get_by_role("button", name=decision).click()
    expect(popup).to_have_url(re.compile(r"/oauth/callback\?"))
    return popup


def arrived(
    dovecot: Dovecot, user: str, subject: str, timeout: float = 20
) -> email.message.Message:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for sub in ("new", "cur"):
            folder = dovecot.mail_dir(user) / sub
            for path in sorted(folder.iterdir()) if folder.is_dir() else ():
                message = email.message_from_bytes(path.read_bytes())
                if message["Subject"] == subject:
                    return message
        time.sleep(0.2)
    raise AssertionError(f"no message {subject!r} arrived for {user}")


def test_an_admin_goes_from_nothing_to_a_sent_test_mail(
    console_on_dovecot: Service, auth_server: AuthServer, dovecot: Dovecot, page: Page
) -> None:
    service = console_on_dovecot
    log_in(page, service, screenshot=True)
    add_provider(page, service, auth_server, CLIENT_SECRET, screenshot=True)

    page.goto(service.url("/mailboxes"))
    page.get_by_role("link", name="Add mailbox").click()
    page.get_by_label("Name", exact=True).fill("alice")
    page.get_by_label("Login").fill(ALICE)
    page.get_by_label("Display name").fill("Alice at the help desk")
    page.locator('[name="outgoing.host"]').fill(dovecot.host)
    expect(page.locator('[name="outgoing.port"]')).to_have_value("587")
    page.locator('[name="outgoing.security"]').select_option("ssl")
    expect(page.locator('[name="outgoing.port"]')).to_have_value("465")  # from the mode
    page.locator('[name="outgoing.security"]').select_option("starttls")
    page.locator('[name="outgoing.port"]').fill(str(dovecot.ports.submission))
    page.locator('[name="incoming.transport"]').select_option("imap")
    expect(page.locator('[name="incoming.port"]')).to_have_value("993")
    page.locator('[name="incoming.host"]').fill(dovecot.host)
    page.locator('[name="incoming.port"]').fill(str(dovecot.ports.imaps))
    page.get_by_role("heading", name="Outgoing mail").evaluate(
        "heading => heading.scrollIntoView({block: 'start'})"
    )
    picture(page, "mailbox-form")
    page.get_by_role("button", name="Add mailbox").click()
    expect(page.get_by_role("heading", name="Mailbox alice")).to_be_visible()
    expect(page.locator("#state")).to_have_text("not authorized")

    # Authorize: consent in the provider's popup; this page learns it without a reload.
    page.evaluate(f"{NO_RELOAD} = 'still here'")
    popup = authorize_in_popup(page, "Allow")
    expect(popup.get_by_role("heading", name="Connected")).to_be_visible()
    expect(popup.locator("#who")).to_have_text(ALICE)
    expect(page.locator("#state")).to_have_text("connected")
    expect(page.locator("#authorize-result")).to_have_text("Connected: mailbox alice is connected")
    expect(page.locator("#token-expires")).to_have_text(re.compile(r"in (59|60) min"))
    assert page.evaluate(NO_RELOAD) == "still here"
    popup.close()
    picture(page, "mailbox-connected")

    page.get_by_role("button", name="Test connection").click()
    expect(page.locator("#result h2")).to_have_text("Test connection: it works")
    steps = page.locator("#steps li")
    expect(steps).to_have_count(3)
    expect(steps.nth(1)).to_contain_text("smtp")
    expect(steps.nth(2)).to_contain_text("imap")
    expect(page.locator("#transcript")).to_contain_text("AUTH")
    expect(page.locator("#transcript")).to_contain_text("[redacted")
    page.locator("#result").evaluate("result => result.scrollIntoView({block: 'start'})")
    picture(page, "test-result")

    page.get_by_label("Send a test mail to").fill(BOB)
    page.get_by_role("button", name="Send test mail").click()
    expect(page.locator("#result h2")).to_have_text("Send test mail: it works")
    expect(page.locator("#steps")).to_contain_text(f"to {BOB} over smtp")
    message = arrived(dovecot, BOB, "mailoauth test message from alice")
    assert "Alice at the help desk" in message["From"]

    # A message through the queue (as an application would send it), then the pages.
    service.cli("send", "alice", "--to", BOB, "--subject", "Weekly report",
                "--body", "The numbers are in.", "--queue")  # fmt: skip
    arrived(dovecot, BOB, "Weekly report")
    page.get_by_role("link", name="Queue").click()
    expect(page.locator("#queue tbody tr")).to_have_count(1)
    expect(page.locator("#queue tbody tr")).to_have_attribute("data-status", "sent")
    picture(page, "queue")

    page.get_by_role("link", name="Dashboard").click()
    row = page.locator('tr[data-mailbox="alice"]')
    expect(row).to_have_attribute("data-state", "connected")
    expect(row).to_contain_text(re.compile(r"in (59|60) min"))  # the token's expiry
    expect(row).to_contain_text("less than a minute ago")  # the last send, via the queue
    picture(page, "dashboard")

    page.goto(service.url("/mailboxes/alice/debug"))
    expect(page.locator("#transcript")).to_contain_text("250")
    picture(page, "transcript")

    page.get_by_role("link", name="Audit log").click()
    actions = page.locator("#audit tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.action)"
    )
    assert actions[:6] == [
        "mailbox.send_test",
        "mailbox.test",
        "mailbox.authorized",  # written by /oauth/callback, credited to the admin
        "mailbox.authorize",
        "mailbox.create",
        "provider.create",
    ]
    picture(page, "audit-log")
    for path in ("/", "/providers", "/providers/testauth/edit", "/mailboxes/alice", "/audit"):
        page.goto(service.url(path))
        assert CLIENT_SECRET not in page.content(), path


def test_denied_consent_and_a_wrong_client_secret_are_said_in_words(
    console: Service, auth_server: AuthServer, page: Page, page_log: PageLog
) -> None:
    page_log.allow(r"/oauth/callback.*status of 400")  # the failure pages answer 400
    service = console
    log_in(page, service)
    add_provider(page, service, auth_server, WRONG_SECRET)
    service.cli("mailbox", "add", "alice", "--provider", "testauth", "--login", ALICE,
                "--outgoing-host", "127.0.0.1")  # fmt: skip
    page.goto(service.url("/mailboxes/alice"))

    popup = authorize_in_popup(page, "Deny")
    expect(popup.get_by_role("heading", name="Not connected")).to_be_visible()
    expect(popup.locator("#message")).to_contain_text("declined")
    expect(page.locator("#authorize-result")).to_contain_text("Not connected:")
    expect(page.locator("#authorize-result")).to_contain_text("declined")
    expect(page.locator("#state")).to_have_text("not authorized")
    popup.close()

    popup = authorize_in_popup(page, "Allow")  # the token endpoint refuses the client
    expect(popup.get_by_role("heading", name="Not connected")).to_be_visible()
    expect(popup.locator("#message")).to_contain_text("invalid_client")
    expect(page.locator("#authorize-result")).to_contain_text("invalid_client")
    expect(page.locator("#state")).to_have_text("not authorized")
    popup.close()

    # The fix: the right secret, typed into the provider's form (the box is empty).
    page.goto(service.url("/providers/testauth/edit"))
    expect(page.locator('[data-secret="client_secret"]')).to_contain_text("Set")
    assert WRONG_SECRET not in page.content()
    page.get_by_label("Client secret", exact=True).fill(CLIENT_SECRET)
    page.get_by_role("button", name="Save provider").click()
    page.goto(service.url("/mailboxes/alice"))
    popup = authorize_in_popup(page, "Allow")
    expect(popup.get_by_role("heading", name="Connected")).to_be_visible()
    expect(page.locator("#state")).to_have_text("connected")


def test_the_provider_form_shows_the_presets_of_the_chosen_kind(
    console: Service, page: Page
) -> None:
    log_in(page, console)
    page.goto(console.url("/providers/_new?kind=microsoft"))
    token_url = page.get_by_label("Microsoft Token URL")
    expect(token_url).to_have_js_property("readOnly", True)
    page.get_by_label("Tenant").fill("contoso.onmicrosoft.com")
    expect(token_url).to_have_value(
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )
    page.get_by_label("Cloud").select_option("usgov")
    expect(token_url).to_have_value(
        "https://login.microsoftonline.us/contoso.onmicrosoft.com/oauth2/v2.0/token"
    )
    expect(page.get_by_label("Scopes", exact=True)).to_be_hidden()  # preset scopes
    page.get_by_label("Kind").select_option("google")
    expect(page.get_by_label("Google Token URL")).to_have_value(
        "https://oauth2.googleapis.com/token"
    )
    expect(page.get_by_label("Tenant")).to_be_hidden()
    expect(page.get_by_text("In production")).to_be_visible()  # the 7-day token trap
    page.get_by_label("Client authentication").select_option("none")
    expect(page.get_by_label("Client secret", exact=True)).to_be_hidden()
