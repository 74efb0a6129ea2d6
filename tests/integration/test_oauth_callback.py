"""The service's OAuth redirect endpoint, through a real `mailoauth serve` and the real
authorization server: the request started in the service (what the console's Authorize
button and the API call), the browser played by httpx, the grant stored; replays, forged
answers, declined consent and answers from another session refused in words."""

from __future__ import annotations

import asyncio
import html
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from mailoauth.config import Settings
from mailoauth.errors import ConfigError
from mailoauth.models import GrantStatus, Mailbox, OutgoingSettings
from mailoauth.providers import GrantType
from mailoauth.store import AuditEntry, SqlStore, open_store
from mailoauth.web.authorize import begin
from tests.cli import MAILOAUTH, Cli
from tests.integration.conftest import RELAYS_OFF
from tests.integration.test_oauth_cli import add_mailbox, add_provider
from tests.integration.test_serve import wait_healthy
from tests.net import free_port
from tests.peers.authserver.fixture import AuthServer

pytestmark = pytest.mark.integration

USER = "alice@example.test"


@dataclass
class Service:
    """One `mailoauth serve` for the module; each test gets a mailbox of its own."""

    base_url: str
    store: SqlStore
    cli: Cli
    mailbox: str = ""

    def authorize_url(self, *, session: str | None = None) -> str:
        return asyncio.run(
            begin(self.store, self.base_url, self.mailbox, session_id=session, initiator="test")
        )

    def status(self) -> GrantStatus | None:
        grant = self.store.get_grant(self.mailbox)
        return None if grant is None else grant.status

    def audit(self) -> list[AuditEntry]:
        return [e for e in self.store.list_audit() if e.target == self.mailbox]


@pytest.fixture(scope="module")
def served(
    auth_server_process: AuthServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    auth_server_process.start()
    cli = Cli(home=tmp_path_factory.mktemp("callback") / "home", env=dict(RELAYS_OFF))
    cli.env["WEB_SECRET"] = "web-secret"
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    add_provider(
        cli, auth_server_process, "web", "--client-secret", "env:WEB_SECRET",
        "--client-auth", "client_secret_basic",
    )  # fmt: skip
    proc = subprocess.Popen(
        [MAILOAUTH, "serve", "--listen", f"127.0.0.1:{port}", "--base-url", base_url],
        env=cli.environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    store = open_store(Settings.load({"MAILOAUTH_HOME": str(cli.home)}))
    try:
        wait_healthy(f"{base_url}/healthz", proc)
        yield Service(base_url, store, cli)
    finally:
        store.close()
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        assert "web-secret" not in err
        assert "code=" not in err  # the callback's query never reaches the log


@pytest.fixture
def service(served: Service, auth_server: AuthServer, request: pytest.FixtureRequest) -> Service:
    """The module's service, the authorization server reset with our client and user, and
    a fresh authorization-code mailbox named after the test."""
    auth_server.add_user(USER)
    auth_server.add_client(
        "web",
        auth_method="client_secret_basic",
        secret="web-secret",
        redirect_uris=[f"{served.base_url}/oauth/callback"],
    )
    name = "mb-" + request.node.name.removeprefix("test_")[:40].replace("_", "-")
    served.store.put_mailbox(
        Mailbox(
            name=name,
            provider="web",
            login=USER,
            grant=GrantType.AUTHORIZATION_CODE,
            outgoing=OutgoingSettings(host="127.0.0.1"),
        )
    )
    return Service(served.base_url, served.store, served.cli, name)


def consent(url: str) -> str:
    """The provider's answer: where it sends the browser back to."""
    answer = httpx.get(url, follow_redirects=False, timeout=10)
    assert answer.status_code in (302, 303), answer.text
    return answer.headers["location"]


def test_authorize_from_the_service_completes_at_the_callback(service: Service):
    back = consent(service.authorize_url())
    assert back.startswith(f"{service.base_url}/oauth/callback?")
    page = httpx.get(back, timeout=30)
    assert page.status_code == 200, page.text
    assert "Connected" in page.text
    assert USER in page.text
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert service.status() is GrantStatus.CONNECTED
    assert service.cli.ok("token", service.mailbox).strip()
    (entry,) = [e for e in service.audit() if e.action == "mailbox.authorized"]
    assert entry.detail is not None
    assert entry.detail.startswith(f"as {USER}; scopes ")
    assert "(started by test)" in entry.detail
    # The same answer again (a replay, a reload): nothing happens but an error page.
    again = httpx.get(back, timeout=30)
    assert again.status_code == 400
    assert "used already" in again.text


def test_forged_and_missing_state_are_refused(service: Service, auth_server: AuthServer):
    forged = httpx.get(f"{service.base_url}/oauth/callback?state=forged&code=x", timeout=10)
    assert forged.status_code == 400
    assert "no authorization in progress" in forged.text
    bare = httpx.get(f"{service.base_url}/oauth/callback", timeout=10)
    assert bare.status_code == 400
    assert "start with Authorize" in bare.text
    assert auth_server.token_requests("authorization_code") == 0


def test_declined_consent_is_shown_in_words(service: Service, auth_server: AuthServer):
    auth_server.configure(consent="deny")
    page = httpx.get(consent(service.authorize_url()), timeout=30)
    assert page.status_code == 400
    assert "consent was declined" in page.text
    assert f'data-mailbox="{service.mailbox}"' in page.text  # the console window knows which
    (entry,) = service.audit()
    assert entry.action == "mailbox.authorize.failed"
    assert service.status() is None


def test_an_answer_is_taken_only_in_the_console_session_that_asked(service: Service):
    back = consent(service.authorize_url(session="session-one"))
    other = httpx.get(back, cookies={"mailoauth_session": "session-two"}, timeout=30)
    assert other.status_code == 400
    assert "another browser session" in other.text
    # The request is spent: even the right session cannot use that answer now.
    right = httpx.get(back, cookies={"mailoauth_session": "session-one"}, timeout=30)
    assert right.status_code == 400
    back = consent(service.authorize_url(session="session-one"))
    mine = httpx.get(back, cookies={"mailoauth_session": "session-one"}, timeout=30)
    assert mine.status_code == 200, mine.text


def test_a_mailbox_on_another_grant_or_redirect_uri_cannot_start_here(
    service: Service, auth_server: AuthServer
):
    cli = service.cli
    cli.ok("mailbox", "add", "pw", "--provider", "web", "--login", USER, "--grant", "password",
           "--password", "env:WEB_SECRET", "--outgoing-host", "127.0.0.1")  # fmt: skip
    with pytest.raises(ConfigError, match="needs no browser"):
        asyncio.run(begin(service.store, service.base_url, "pw", session_id=None, initiator="t"))
    add_provider(
        cli, auth_server, "loop", "--client-auth", "none", redirect="http://127.0.0.1:9/cb"
    )
    add_mailbox(cli, "mb2", "loop", "authorization_code")
    callback = re.escape(f"register {service.base_url}/oauth/callback")
    with pytest.raises(ConfigError, match=callback):
        asyncio.run(begin(service.store, service.base_url, "mb2", session_id=None, initiator="t"))


def test_consent_on_the_providers_page(service: Service, auth_server: AuthServer):
    auth_server.configure(consent="page")
    url = service.authorize_url()
    page = httpx.get(url, timeout=10)
    assert page.status_code == 200
    assert "Allow access?" in page.text
    form = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', page.text))
    form = {k: html.unescape(v) for k, v in form.items()}
    answer = httpx.post(
        url.split("?")[0], data={**form, "decision": "allow"}, follow_redirects=False, timeout=10
    )
    assert answer.status_code in (302, 303)
    done = httpx.get(answer.headers["location"], timeout=30)
    assert done.status_code == 200, done.text
    assert service.status() is GrantStatus.CONNECTED
