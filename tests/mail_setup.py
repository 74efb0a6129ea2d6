"""The set-up most mail tests share: a generic provider ``test`` at the test authorization
server (client ``app``) and password-grant mailboxes on the Dovecot peer, applied through
the real `mailoauth apply`, with the CLI trusting Dovecot's test CA."""

from __future__ import annotations

from pathlib import Path

from tests.cli import Cli
from tests.peers.authserver.fixture import AuthServer
from tests.peers.dovecot import ALICE, BOB, PASSWORD, Dovecot


def apply_password_mailboxes(
    cli: Cli, auth_server: AuthServer, dovecot: Dovecot, tmp_path: Path, mailboxes: dict[str, str]
) -> Cli:
    """``mailboxes``: name → the TOML lines of that mailbox beyond provider, grant and
    password (``login = …`` and its outgoing / incoming settings)."""
    auth_server.add_mail_client()
    for user in (ALICE, BOB):
        auth_server.add_user(user, PASSWORD)
    cli.env.update(
        {"APP_SECRET": "app-secret", "MAIL_PW": PASSWORD, "MAILOAUTH_CA_FILE": str(dovecot.ca_path)}
    )
    config = tmp_path / "mail.toml"
    config.write_text(
        f"""
[providers.test]
kind = "generic"
client_id = "app"
client_secret = "env:APP_SECRET"
token_url = "{auth_server.token_url}"
authorization_url = "{auth_server.authorize_url}"
scopes = ["mail"]
"""
        + "".join(
            f"""
[mailboxes.{name}]
provider = "test"
grant = "password"
password = "env:MAIL_PW"
{body.strip()}
"""
            for name, body in mailboxes.items()
        )
    )
    cli.ok("apply", str(config))
    return cli
