"""Every grant and client-auth method end to end: `mailoauth authorize` / `token` /
`status` / `revoke` through the real entry point against the real test authorization
server (tests/peers/authserver), on a real SQLite store."""

from __future__ import annotations

import json
import re
import subprocess
import time

import httpx
import pytest

from tests.cli import MAILOAUTH, Cli
from tests.material import cert_pem, key_pem, rsa_key
from tests.net import free_port

USER = "alice@example.test"


@pytest.fixture
def server(auth_server):
    auth_server.add_user(USER, "alice-password")
    return auth_server


def add_provider(cli: Cli, server, name: str, *extra: str, redirect: str | None = None) -> None:
    args = [
        "provider",
        "add",
        name,
        "--kind",
        "generic",
        "--client-id",
        name,
        "--authorization-url",
        server.authorize_url,
        "--token-url",
        server.token_url,
        "--device-url",
        server.device_url,
        "--revocation-url",
        server.revocation_url,
        "--scope",
        "mail",
        "--scope",
        "offline_access",
    ]
    if redirect:
        args += ["--redirect-uri", redirect]
    cli.ok(*args, *extra)


def add_mailbox(cli: Cli, name: str, provider: str, grant: str, *extra: str) -> None:
    cli.ok(
        "mailbox",
        "add",
        name,
        "--provider",
        provider,
        "--login",
        USER,
        "--grant",
        grant,
        "--outgoing-host",
        "127.0.0.1",
        *extra,
    )


def code_setup(cli: Cli, server, auth_method: str = "client_secret_post") -> str:
    redirect = f"http://127.0.0.1:{free_port()}/oauth/callback"
    server.add_client(
        "web",
        auth_method=auth_method,
        secret="web-secret",
        redirect_uris=["http://127.0.0.1/oauth/callback"],
    )
    cli.env["WEB_SECRET"] = "web-secret"
    add_provider(
        cli,
        server,
        "web",
        "--client-secret",
        "env:WEB_SECRET",
        "--client-auth",
        auth_method,
        redirect=redirect,
    )
    add_mailbox(cli, "mb", "web", "authorization_code")
    return redirect


def authorize_in_browser(cli: Cli, *args: str) -> tuple[str, str]:
    """Run `authorize --no-browser`, play the browser with httpx; return (stdout, stderr)."""
    proc = subprocess.Popen(
        [MAILOAUTH, "authorize", "mb", "--no-browser", *args],
        env=cli.environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        consent = httpx.get(url, follow_redirects=False, timeout=10)
        assert consent.status_code in (302, 303), consent.text
        landing = httpx.get(consent.headers["location"], timeout=10)
        assert landing.status_code == 200
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    return url + "\n" + out, err


def test_authorization_code_with_pkce_through_the_loopback_listener(cli, server):
    code_setup(cli, server)
    out, _ = authorize_in_browser(cli)
    assert f"authorized mailbox mb as {USER}" in out
    params = server.last_authorize_params()
    assert params["code_challenge_method"] == "S256"
    assert params["login_hint"] == USER
    assert params["scope"] == "mail offline_access"
    token = cli.ok("token", "mb").strip()
    info = server.introspect(token)
    assert info["active"] is True
    assert info["username"] == USER
    status = json.loads(cli.ok("status", "--json"))
    assert status[0]["status"] == "connected"


@pytest.mark.parametrize("auth_method", ["client_secret_basic", "client_secret_post"])
def test_secret_client_auth_methods(cli, server, auth_method):
    code_setup(cli, server, auth_method)
    authorize_in_browser(cli)
    assert server.token_requests("authorization_code") == 1


def start_paste(cli: Cli) -> tuple[subprocess.Popen[str], str]:
    """Start `authorize --paste`; play the browser; return the process and where the
    provider sent the browser (what a user would paste)."""
    proc = subprocess.Popen(
        [MAILOAUTH, "authorize", "mb", "--paste"],
        env=cli.environ(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = proc.stdout.readline().strip()
    return proc, httpx.get(url, follow_redirects=False, timeout=10).headers["location"]


def test_paste_mode_for_remote_machines(cli, server):
    code_setup(cli, server)
    proc, location = start_paste(cli)
    out, err = proc.communicate(location + "\n", timeout=30)
    assert proc.returncode == 0, err
    assert "authorized mailbox mb" in out


def test_a_forged_callback_is_refused(cli, server):
    code_setup(cli, server)
    proc, location = start_paste(cli)
    forged = re.sub(r"state=[^&]+", "state=forged", location)
    _, err = proc.communicate(forged + "\n", timeout=30)
    assert proc.returncode == 1
    assert "state" in err
    assert "Traceback" not in err
    assert server.token_requests("authorization_code") == 0


def test_denied_consent_is_said_in_words(cli, server):
    code_setup(cli, server)
    server.configure(consent="deny")
    proc, location = start_paste(cli)
    _, err = proc.communicate(location + "\n", timeout=30)
    assert proc.returncode == 1
    assert "declined" in err or "denied" in err


def test_password_grant(cli, server):
    server.add_client("ropc", auth_method="client_secret_post", secret="ropc-secret")
    add_provider(cli, server, "ropc", "--client-secret", "ropc-secret")
    cli.env["PBX_PW"] = "alice-password"
    add_mailbox(cli, "pbx", "ropc", "password", "--password", "env:PBX_PW")
    assert "authorized mailbox pbx (password)" in cli.ok("authorize", "pbx")
    assert server.introspect(cli.ok("token", "pbx").strip())["username"] == USER


def test_client_credentials_with_basic_auth(cli, server):
    server.add_client("app", auth_method="client_secret_basic", secret="app-secret")
    add_provider(
        cli, server, "app", "--client-secret", "app-secret", "--client-auth", "client_secret_basic"
    )
    add_mailbox(cli, "reports", "app", "client_credentials")
    token = cli.ok("token", "reports").strip()
    assert server.introspect(token)["active"] is True
    assert server.token_requests("client_credentials") == 1


def test_client_credentials_with_private_key_jwt(cli, server, tmp_path):
    key = rsa_key()
    certificate = cert_pem(key)
    (tmp_path / "app.key").write_text(key_pem(key))
    (tmp_path / "app.crt").write_text(certificate)
    server.add_client("certapp", auth_method="private_key_jwt", certificate_pem=certificate)
    add_provider(
        cli,
        server,
        "certapp",
        "--client-auth",
        "private_key_jwt",
        "--private-key",
        f"file:{tmp_path / 'app.key'}",
        "--certificate",
        str(tmp_path / "app.crt"),
    )
    add_mailbox(cli, "reports", "certapp", "client_credentials")
    assert server.introspect(cli.ok("token", "reports").strip())["active"] is True


def test_service_account_jwt_bearer(cli, server, tmp_path):
    from tests.material import service_account_json

    key = rsa_key(2048, 1)
    (tmp_path / "sa.json").write_text(service_account_json(key, email="sa@proj.example"))
    server.add_service_account(
        "sa@proj.example", public_key_pem=key_pem(key), key_id="0123456789abcdef"
    )
    add_provider(cli, server, "sa", "--client-auth", "none")
    add_mailbox(
        cli,
        "scanner",
        "sa",
        "service_account",
        "--service-account-json",
        f"file:{tmp_path / 'sa.json'}",
    )
    token = cli.ok("token", "scanner").strip()
    assert server.introspect(token)["username"] == USER


def test_device_code(cli, server):
    server.add_client("tv", auth_method="none")
    add_provider(cli, server, "tv", "--client-auth", "none")
    add_mailbox(cli, "helpdesk", "tv", "device_code")
    proc = subprocess.Popen(
        [MAILOAUTH, "authorize", "helpdesk"],
        env=cli.environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    user_code = re.search(r"enter the code (\S+)", line).group(1)
    server.approve_device(user_code, USER)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "authorized mailbox helpdesk" in out
    assert server.introspect(cli.ok("token", "helpdesk").strip())["active"] is True


def test_wrong_client_secret_says_what_to_check(cli, server):
    server.add_client("app", auth_method="client_secret_post", secret="right")
    add_provider(cli, server, "app", "--client-secret", "wrong")
    add_mailbox(cli, "reports", "app", "client_credentials")
    message = cli.fails("token", "reports", code=1)
    assert "invalid_client" in message
    assert "provider 'app'" in message
    assert "wrong" not in message.replace("wrong client", "")
    status = json.loads(cli.ok("status", "--json"))[0]
    assert status["status"] == "needs_authorization"


def test_revoked_consent_turns_the_mailbox_to_needs_authorization(cli, server):
    code_setup(cli, server)
    server.configure(access_token_lifetime=60)  # inside the refresh margin: every call refreshes
    authorize_in_browser(cli)
    cli.ok("token", "mb")
    server.revoke_user(USER)
    message = cli.fails("token", "mb", code=1)
    assert "needs authorization" in message
    assert "mailoauth authorize mb" in message
    shown = json.loads(cli.ok("status", "--json"))[0]
    assert shown["status"] == "needs_authorization"
    assert "invalid_grant" in shown["last_error"]


def test_rotation_and_missing_new_refresh_token(cli, server):
    code_setup(cli, server)
    server.configure(access_token_lifetime=60, rotate_refresh_tokens=True)
    authorize_in_browser(cli)
    first = cli.ok("token", "mb")
    second = cli.ok("token", "mb")
    assert first != second  # refreshed with the rotated refresh token
    server.configure(access_token_lifetime=60, rotate_refresh_tokens=False)
    cli.ok("token", "mb")
    cli.ok("token", "mb")  # the kept refresh token still works
    assert server.token_requests("refresh_token") == 4


def test_token_endpoint_failures_are_retried_or_reported(cli, server):
    code_setup(cli, server)
    server.configure(access_token_lifetime=1)  # every call finds the token expired
    authorize_in_browser(cli)
    for mode in ("status_500", "malformed"):
        time.sleep(1.1)
        server.fail(mode, count=1)
        cli.ok("token", "mb")  # one bad answer, then success on the retry
    time.sleep(1.1)
    server.stop()
    try:
        message = cli.fails("token", "mb", code=1)
        assert "cannot reach" in message
        assert json.loads(cli.ok("status", "--json"))[0]["status"] == "error"
    finally:
        server.start()
    cli.ok("token", "mb")  # back to normal once the server is
    assert json.loads(cli.ok("status", "--json"))[0]["status"] == "connected"
    time.sleep(1.1)
    server.fail("no_expires_in", count=1)
    token = cli.ok("token", "mb")
    assert cli.ok("token", "mb") == token  # assumed to last an hour: served from the store


def test_revoke_at_the_provider(cli, server):
    code_setup(cli, server)
    authorize_in_browser(cli)
    token = cli.ok("token", "mb").strip()
    out = cli.ok("revoke", "mb")
    assert "revoked mailbox mb at the provider" in out
    assert server.introspect(token)["active"] is False
    assert json.loads(cli.ok("status", "--json"))[0]["status"] == "not_authorized"


def test_never_authorized(cli, server):
    code_setup(cli, server)
    message = cli.fails("token", "mb", code=1)
    assert message == (
        "mailbox 'mb' needs authorization: it has not been authorized yet; "
        "run `mailoauth authorize mb`"
    )


def test_processes_refreshing_at_once_make_one_request(cli, server):
    """Invariant 4 across processes: with rotation and reuse detection on, a second
    refresh with the same refresh token would revoke the grant; exactly one happens."""
    code_setup(cli, server)
    server.configure(access_token_lifetime=1)
    authorize_in_browser(cli)
    server.configure(access_token_lifetime=3600)
    time.sleep(1.1)
    procs = [
        subprocess.Popen(
            [MAILOAUTH, "token", "mb"],
            env=cli.environ(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0], [err for _, err in results]
    assert len({out for out, _ in results}) == 1
    assert server.token_requests("refresh_token") == 1


def test_status_warns_of_a_client_secret_about_to_expire(cli, server):
    import datetime as dt

    soon = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    server.add_client("app", auth_method="client_secret_post", secret="s")
    add_provider(cli, server, "app", "--client-secret", "s", "--client-secret-expires", soon)
    add_mailbox(cli, "reports", "app", "client_credentials")
    cli.ok("token", "reports")
    row = json.loads(cli.ok("status", "--json"))[0]
    assert row["status"] == "connected"
    assert f"expires {soon} (in 10 days): renew it soon" in row["note"]
    assert "renew it soon" in cli.ok("status")
