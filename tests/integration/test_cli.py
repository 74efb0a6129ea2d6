"""The CLI through its real entry point, on a real SQLite store in a temp data directory."""

import json
import stat
import subprocess
import sys
from pathlib import Path

from tests.unit.test_configfile import EXAMPLE_ENV, example_dir

GOOGLE = [
    "provider",
    "add",
    "g",
    "--kind",
    "google",
    "--client-id",
    "cid.apps.googleusercontent.com",
]


def all_bytes(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in home.glob("mailoauth.db*"))


def test_provider_lifecycle(cli):
    assert (
        cli.ok(*GOOGLE, "--client-secret", "-", stdin="GOCSPX-topsecret\n")
        == "created provider g\n"
    )
    listing = cli.ok("provider", "list")
    assert "g" in listing
    assert "google" in listing
    shown = cli.ok("provider", "show", "g")
    assert "https://oauth2.googleapis.com/token" in shown
    assert "http://127.0.0.1:8025/oauth/callback" in shown
    assert "client secret (hidden)" in shown
    data = json.loads(cli.ok("provider", "show", "g", "--json"))
    assert data["client_secret"] == "set"
    for output in (listing, shown, json.dumps(data)):
        assert "topsecret" not in output
    assert cli.ok("provider", "remove", "g") == "removed provider g\n"
    assert "does not exist" in cli.fails("provider", "show", "g")


def test_key_file_is_created_private(cli):
    cli.ok(*GOOGLE, "--client-secret", "s")
    mode = stat.S_IMODE((cli.home / "secret.key").stat().st_mode)
    assert mode == 0o600


def test_duplicate_provider_needs_replace(cli):
    cli.ok(*GOOGLE, "--client-secret", "s")
    assert "already exists" in cli.fails(*GOOGLE, "--client-secret", "s")
    assert cli.ok(*GOOGLE, "--client-secret", "s2", "--replace") == "updated provider g\n"


def test_microsoft_without_tenant_names_the_option(cli):
    message = cli.fails(
        "provider", "add", "m", "--kind", "microsoft", "--client-id", "x", "--client-secret", "s"
    )
    assert message.startswith("--tenant: is required for Microsoft providers")


def test_mailbox_gets_preset_hosts_and_scopes(cli):
    cli.ok(
        "provider",
        "add",
        "m",
        "--kind",
        "microsoft",
        "--tenant",
        "contoso.onmicrosoft.com",
        "--client-id",
        "x",
        "--client-secret",
        "env:SECRET",
        env={"SECRET": "s"},
    )
    assert (
        cli.ok(
            "mailbox",
            "add",
            "sales",
            "--provider",
            "m",
            "--login",
            "sales@contoso.com",
            "--outgoing",
            "smtp",
            "--incoming",
            "imap",
        )
        == "created mailbox sales\n"
    )
    shown = cli.ok("mailbox", "show", "sales")
    assert "smtp smtp.office365.com:587 (starttls)" in shown
    assert "imap outlook.office365.com:993 (ssl)" in shown
    assert "https://outlook.office.com/SMTP.Send" in shown
    assert "not authorized" in shown
    listed = json.loads(cli.ok("mailbox", "list", "--json"))
    assert listed[0]["status"] == "not_authorized"


def test_bad_mailbox_option_is_named_and_nothing_is_written(cli):
    cli.ok(*GOOGLE, "--client-secret", "s")
    message = cli.fails(
        "mailbox",
        "add",
        "mb",
        "--provider",
        "g",
        "--login",
        "a@example.com",
        "--outgoing-port",
        "70000",
    )
    assert message == "--outgoing-port: 70000 is out of range; use a port from 1 to 65535"
    assert json.loads(cli.ok("mailbox", "list", "--json")) == []


def test_mailbox_with_missing_provider(cli):
    message = cli.fails("mailbox", "add", "mb", "--provider", "nope", "--login", "a@example.com")
    assert "provider 'nope' does not exist" in message


def test_unset_env_reference(cli):
    message = cli.fails(*GOOGLE, "--client-secret", "env:MAILOAUTH_TEST_UNSET")
    assert "MAILOAUTH_TEST_UNSET is not set" in message


def test_apply_is_idempotent_and_reports(cli, tmp_path):
    cfg = tmp_path / "cfg"
    cfg.mkdir()
    path = example_dir(cfg) / "mailoauth.toml"
    first = cli.ok("apply", str(path), env=EXAMPLE_ENV)
    assert "created provider google" in first
    assert "created mailbox helpdesk" in first
    assert first.splitlines()[-1] == "12 created"
    second = cli.ok("apply", str(path), env=EXAMPLE_ENV)
    assert second.splitlines()[-1] == "12 unchanged"
    changed = path.read_text().replace("poll_interval = 2", "poll_interval = 3")
    path.write_text(changed)
    third = cli.ok("apply", str(path), env=EXAMPLE_ENV)
    assert "updated mailbox support" in third
    assert third.splitlines()[-1] == "1 updated, 11 unchanged"


def test_apply_dry_run_and_prune(cli, tmp_path):
    path = example_dir(tmp_path) / "mailoauth.toml"
    assert cli.ok("apply", "--dry-run", str(path), env=EXAMPLE_ENV).startswith("would be created")
    assert json.loads(cli.ok("provider", "list", "--json")) == []
    cli.ok("apply", str(path), env=EXAMPLE_ENV)
    small = tmp_path / "small.toml"
    # Only the example's first provider, unchanged: everything else is pruned.
    small.write_text(path.read_text().split("[mailboxes.support]")[0])
    pruned = cli.ok("apply", "--prune", str(small), env=EXAMPLE_ENV)
    assert "removed mailbox support" in pruned
    assert "removed provider m365" in pruned
    assert [p["name"] for p in json.loads(cli.ok("provider", "list", "--json"))] == ["google"]


def test_bad_apply_file_writes_nothing(cli, tmp_path):
    path = example_dir(tmp_path) / "mailoauth.toml"
    path.write_text(
        path.read_text()
        + '\n[mailboxes.broken]\nprovider = "google"\nlogin = "x@y.z"\nincoming = { port = 0 }\n'
    )
    message = cli.fails("apply", str(path), env=EXAMPLE_ENV)
    assert message.startswith("mailboxes.broken.incoming.port: 0 is out of range")
    assert json.loads(cli.ok("provider", "list", "--json")) == []


def test_invalid_toml(cli, tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[providers.x\n")
    assert "is not valid TOML" in cli.fails("apply", str(path))


def test_provider_in_use_cannot_be_removed(cli):
    cli.ok(*GOOGLE, "--client-secret", "s")
    cli.ok("mailbox", "add", "mb", "--provider", "g", "--login", "a@example.com")
    message = cli.fails("provider", "remove", "g")
    assert "mb" in message
    cli.ok("mailbox", "remove", "mb")
    cli.ok("provider", "remove", "g")


def test_no_secret_reaches_the_database_file_in_clear(cli, tmp_path):
    path = example_dir(tmp_path) / "mailoauth.toml"
    cli.ok("apply", str(path), env=EXAMPLE_ENV)
    raw = all_bytes(cli.home)
    assert raw, "the database exists"
    for secret in EXAMPLE_ENV.values():
        assert secret.encode() not in raw
    key_body = (tmp_path / "m365-app.key").read_text().splitlines()[1].encode()
    assert key_body not in raw


def test_wrong_key_is_a_clear_error(cli):
    cli.ok(*GOOGLE, "--client-secret", "s")
    (cli.home / "secret.key").write_text(cli.ok("generate-key"))
    message = cli.fails("provider", "show", "g")
    assert "key" in message


def test_missing_key_file_is_not_silently_replaced(cli):
    cli.ok(*GOOGLE, "--client-secret", "s")
    (cli.home / "secret.key").unlink()
    message = cli.fails("provider", "list")
    assert "secret.key" in message
    assert not (cli.home / "secret.key").exists()


def test_malformed_env_key(cli):
    message = cli.fails("provider", "list", env={"MAILOAUTH_SECRET_KEY": "not-a-key"})
    assert "MAILOAUTH_SECRET_KEY" in message
    assert "not-a-key" not in message


def test_rotate_key_with_key_file(cli):
    cli.ok(*GOOGLE, "--client-secret", "s")
    before = (cli.home / "secret.key").read_text()
    out = cli.ok("rotate-key")
    assert "re-encrypted 1 stored secret(s)" in out
    assert (cli.home / "secret.key").read_text() != before
    assert "client secret (hidden)" in cli.ok("provider", "show", "g")


def test_rotate_key_with_env_key(cli):
    key = cli.ok("generate-key").strip()
    assert len(key) == 43
    cli.env["MAILOAUTH_SECRET_KEY"] = key
    cli.ok(*GOOGLE, "--client-secret", "s")
    assert not (cli.home / "secret.key").exists()
    message = cli.fails("rotate-key")
    assert "MAILOAUTH_NEW_SECRET_KEY" in message
    new = cli.ok("generate-key").strip()
    out = cli.ok("rotate-key", env={"MAILOAUTH_NEW_SECRET_KEY": new})
    assert "now set MAILOAUTH_SECRET_KEY" in out
    assert cli.run("provider", "show", "g").returncode == 2
    cli.env["MAILOAUTH_SECRET_KEY"] = new
    cli.ok("provider", "show", "g")


def test_python_dash_m_works_too(cli):
    result = subprocess.run(
        [sys.executable, "-m", "mailoauth", "--help"],
        capture_output=True,
        text=True,
        env=cli.environ(),
        check=False,
    )
    assert result.returncode == 0
    assert "apply" in result.stdout
