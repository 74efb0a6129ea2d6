"""Mail from the shell, end to end: `mailoauth send | fetch | test | debug` through the
real entry point, tokens from the test authorization server, Dovecot's submission, IMAP
and POP3 checking every token by introspection, messages landing in a Maildir."""

from __future__ import annotations

import base64
import email
import json
from email import policy
from pathlib import Path

import pytest

from tests.cli import Cli
from tests.integration.test_oauth_cli import authorize_in_browser
from tests.mail_setup import apply_password_mailboxes
from tests.net import free_port
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import ALICE, BOB, PASSWORD, Dovecot

pytestmark = pytest.mark.integration


@pytest.fixture
def mail_cli(cli: Cli, auth_server: AuthServer, dovecot: Dovecot, tmp_path: Path) -> Cli:
    """Providers and mailboxes for ALICE (submission + IMAPS) and BOB (submission + POP3S),
    both on the password grant, trusting Dovecot's test CA."""
    return apply_password_mailboxes(
        cli,
        auth_server,
        dovecot,
        tmp_path,
        {
            name: f"""
login = "{login}"
display_name = "{name.title()}"
outgoing = {{ host = "127.0.0.1", port = {dovecot.ports.submission} }}
incoming = {{ transport = "{incoming}", host = "127.0.0.1", port = {port}, security = "ssl" }}
"""
            for name, login, incoming, port in (
                ("alice", ALICE, "imap", dovecot.ports.imaps),
                ("bob", BOB, "pop3", dovecot.ports.pop3s),
            )
        },
    )


def maildir_messages(path: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(f.read_bytes(), policy=policy.default)  # type: ignore[misc]
        for f in sorted((path / "new").iterdir())
    ]


def test_send_then_fetch_over_imap_and_pop3(mail_cli: Cli, tmp_path: Path):
    out = mail_cli.ok(
        "send", "alice", "--to", BOB, "--cc", ALICE, "--subject", "Quarterly report",
        "--body", "Numbers attached.",
    )  # fmt: skip
    assert out.startswith("sent <")
    assert "to 2 recipient(s)" in out
    inbox = tmp_path / "alice-mail"
    assert "fetched 1 message(s) from alice/INBOX" in mail_cli.ok(
        "fetch", "alice", "--maildir", str(inbox)
    )
    (got,) = maildir_messages(inbox)
    assert got["Subject"] == "Quarterly report"
    assert got["From"] == f"Alice <{ALICE}>"
    assert got.get_content().strip() == "Numbers attached."
    assert "fetched 0 message(s)" in mail_cli.ok("fetch", "alice", "--maildir", str(inbox))

    bob_box = tmp_path / "bob-mail"
    assert "fetched 1 message(s) from bob/INBOX" in mail_cli.ok(
        "fetch", "bob", "--maildir", str(bob_box)
    )
    assert [m["Subject"] for m in maildir_messages(bob_box)] == ["Quarterly report"]


def test_send_reads_the_body_from_stdin_or_a_whole_message_from_a_file(
    mail_cli: Cli, tmp_path: Path
):
    mail_cli.ok("send", "alice", "--to", BOB, "--subject", "from stdin", stdin="piped body\n")
    eml = tmp_path / "note.eml"
    eml.write_bytes(
        b"From: Alice <alice@example.com>\r\nTo: nobody@example.com\r\n"
        b"Subject: from a file\r\n\r\nfile body\r\n"
    )
    mail_cli.ok("send", "alice", "--file", str(eml), "--to", BOB)  # --to replaces the file's
    box = tmp_path / "bob"
    mail_cli.ok("fetch", "bob", "--maildir", str(box))
    got = {m["Subject"]: m for m in maildir_messages(box)}
    assert got["from stdin"].get_content().strip() == "piped body"
    assert got["from a file"]["To"] == BOB
    assert got["from a file"]["Message-ID"]  # filled in


def test_a_token_the_server_stopped_accepting_is_refreshed_once(
    mail_cli: Cli, auth_server: AuthServer, tmp_path: Path
):
    mail_cli.ok("token", "alice")  # stored, valid for an hour as far as we know
    auth_server.expire_access_tokens()  # ... but the provider says otherwise now
    before = auth_server.token_requests()
    mail_cli.ok("send", "alice", "--to", BOB, "--subject", "after expiry", "--body", "x")
    assert auth_server.token_requests() == before + 1  # one new token, then sent
    (shown,) = [m for m in json.loads(mail_cli.ok("status", "--json")) if m["mailbox"] == "alice"]
    assert shown["status"] == "connected"
    assert not shown["last_error"]


def test_deliver_target_from_the_mailbox_settings(mail_cli: Cli, tmp_path: Path, dovecot):
    target = tmp_path / "configured"
    mail_cli.ok(
        "mailbox", "add", "alice", "--replace", "--provider", "test", "--login", ALICE,
        "--grant", "password", "--password", "env:MAIL_PW",
        "--incoming", "imap", "--incoming-host", "127.0.0.1",
        "--incoming-port", str(dovecot.ports.imap), "--incoming-security", "starttls",
        "--incoming-after-fetch", "delete", "--incoming-deliver", f"maildir:{target}",
    )  # fmt: skip
    dovecot.deliver(ALICE, b"Subject: configured\r\n\r\nhello\r\n")
    mail_cli.ok("fetch", "alice")
    assert [m["Subject"] for m in maildir_messages(target)] == ["configured"]
    assert list((dovecot.mail_dir(ALICE) / "new").iterdir()) == []  # deleted at the server


def test_fetch_without_a_target_says_where_to_set_one(mail_cli: Cli):
    message = mail_cli.fails("fetch", "alice")
    assert "incoming.deliver" in message
    assert "--maildir" in message


def test_test_command_walks_the_chain(mail_cli: Cli, tmp_path: Path):
    out = mail_cli.ok("test", "alice", "--send-to", BOB)
    lines = out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["ok", "token"],
        ["ok", "smtp"],
        ["ok", "send"],
        ["ok", "imap"],
    ]
    assert "AUTH OAUTHBEARER accepted" in lines[1]
    assert "INBOX" in lines[3]
    box = tmp_path / "bob"
    mail_cli.ok("fetch", "bob", "--maildir", str(box))
    assert maildir_messages(box)[0]["Subject"] == "mailoauth test message from alice"


def test_test_command_names_the_failing_stage(mail_cli: Cli):
    mail_cli.ok(
        "mailbox", "add", "broken", "--provider", "test", "--login", ALICE,
        "--grant", "password", "--password", "env:MAIL_PW",
        "--outgoing", "smtp", "--outgoing-host", "127.0.0.1",
        "--outgoing-port", str(free_port()),
    )  # fmt: skip
    result = mail_cli.run("test", "broken")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ok")
    assert "token" in lines[0]
    assert lines[1].startswith("FAIL  smtp connect")
    assert "cannot connect" in lines[1]


def test_debug_transcript_has_the_conversation_and_no_secret(
    mail_cli: Cli, auth_server: AuthServer
):
    mail_cli.ok("send", "alice", "--to", BOB, "--subject", "traced", "--body", "x", "--debug")
    token = mail_cli.ok("token", "alice").strip()
    transcript = mail_cli.ok("debug", "alice")
    assert "smtp" in transcript
    assert "STARTTLS" in transcript
    assert "Subject: traced" in transcript
    assert "AUTH OAUTHBEARER [redacted" in transcript
    for secret in (token, base64.b64encode(token.encode()).decode(), PASSWORD, "app-secret"):
        assert secret not in transcript
    # Not recording unless asked: a plain send adds nothing.
    before = len(transcript.splitlines())
    mail_cli.ok("send", "alice", "--to", BOB, "--subject", "quiet", "--body", "x")
    assert len(mail_cli.ok("debug", "alice").splitlines()) == before
    assert "debug transcripts on" in mail_cli.ok("debug", "alice", "--on")
    mail_cli.ok("send", "alice", "--to", BOB, "--subject", "recorded", "--body", "x")
    assert "Subject: recorded" in mail_cli.ok("debug", "alice")
    assert "deleted" in mail_cli.ok("debug", "alice", "--clear")


def test_revoked_consent_is_refused_by_dovecot_and_needs_authorization(
    cli: Cli, auth_server: AuthServer, dovecot: Dovecot
):
    redirect = f"http://127.0.0.1:{free_port()}/oauth/callback"
    auth_server.add_client(
        "web", auth_method="client_secret_post", secret="web-secret",
        redirect_uris=["http://127.0.0.1/oauth/callback"],
    )  # fmt: skip
    auth_server.add_user(ALICE, PASSWORD)
    cli.env.update({"WEB_SECRET": "web-secret", "MAILOAUTH_CA_FILE": str(dovecot.ca_path)})
    cli.ok(
        "provider", "add", "web", "--kind", "generic", "--client-id", "web",
        "--client-secret", "env:WEB_SECRET", "--token-url", auth_server.token_url,
        "--authorization-url", auth_server.authorize_url, "--redirect-uri", redirect,
        "--scope", "mail", "--scope", "offline_access",
    )  # fmt: skip
    cli.ok(
        "mailbox", "add", "mb", "--provider", "web", "--login", ALICE,
        "--grant", "authorization_code",
        "--outgoing", "smtp", "--outgoing-host", "127.0.0.1",
        "--outgoing-port", str(dovecot.ports.submission),
    )  # fmt: skip
    authorize_in_browser(cli)
    cli.ok("send", "mb", "--to", BOB, "--subject", "before", "--body", "x")
    auth_server.revoke_user(ALICE)  # consent withdrawn: access and refresh tokens die
    message = cli.fails("send", "mb", "--to", BOB, "--subject", "after", "--body", "x", code=1)
    assert "needs authorization" in message
    assert "mailoauth authorize mb" in message
    (shown,) = json.loads(cli.ok("status", "--json"))
    assert shown["status"] == "needs_authorization"
    # Dovecot really saw the cached token and refused it (introspection said inactive).
    assert "auth failed" in dovecot.log_text(), dovecot.log_text()


def test_bad_send_input_is_one_clear_line(mail_cli: Cli):
    assert "--to" in mail_cli.fails("send", "alice", "--subject", "x", "--body", "y")
    assert "cannot be read" in mail_cli.fails("send", "alice", "--to", BOB, "--file", "/nope.eml")
    unknown = mail_cli.fails("send", "nobody", "--to", BOB, "--body", "y")
    assert "nobody" in unknown
