"""`mailoauth serve` as a user runs it: a real process on a loopback port."""

import re
import signal
import subprocess
import time

import httpx

from tests.cli import MAILOAUTH
from tests.net import free_port


def wait_healthy(url: str, proc: subprocess.Popen[str]) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            return httpx.get(url, timeout=1)
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer")


def test_serve_on_the_embedded_default(cli):
    cli.ok(
        "provider",
        "add",
        "g",
        "--kind",
        "google",
        "--client-id",
        "cid",
        "--client-secret",
        "GOCSPX-serve-secret",
    )
    cli.ok(
        "mailbox",
        "add",
        "support",
        "--provider",
        "g",
        "--login",
        "support@example.com",
        "--outgoing",
        "smtp",
    )
    cli.ok("admin", "create", "ops", "--password-stdin", stdin="correct horse battery")
    port = free_port()
    proc = subprocess.Popen(
        [MAILOAUTH, "serve", "--listen", f"127.0.0.1:{port}"],
        env=cli.environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health = wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        assert health.status_code == 200
        assert health.json()["status"] == "ok"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as browser:
            login = browser.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
            assert token, login.text
            form = {"csrf_token": token.group(1), "name": "ops"}
            answer = browser.post(
                "/login", data={**form, "password": "correct horse battery", "next": "/"}
            )
            assert answer.status_code == 303, answer.text
            page = browser.get("/")
        assert page.status_code == 200
        assert "support@example.com" in page.text
        assert "not authorized" in page.text
        assert "GOCSPX-serve-secret" not in page.text
        # The OAuth redirect endpoint must never have its code written to a log.
        httpx.get(f"http://127.0.0.1:{port}/oauth/callback?code=AUTHCODE-123&state=s", timeout=5)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "AUTHCODE-123" not in out + err
    assert "GOCSPX-serve-secret" not in out + err
    assert f"127.0.0.1:{port}" in err
    assert (cli.home / "mailoauth.db").exists()


def test_serve_refuses_a_public_bind_without_login(cli):
    message = cli.fails("serve", "--listen", "0.0.0.0:8025")
    assert message.startswith("--listen: 0.0.0.0 is not a loopback address")


def test_serve_refuses_an_http_base_url_that_is_not_loopback(cli):
    message = cli.fails("serve", "--base-url", "http://mail.example.com")
    assert "base_url" in message
    assert "https" in message
