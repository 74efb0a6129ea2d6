"""The ``mailoauth`` command line: one composition root (with ``web.app``).

Every command does its work through the same building blocks the service uses: the TOML
builders for validation, the store for persistence. Expected failures are
:class:`~mailoauth.errors.MailoauthError` and end as one line on stderr, ``error: ...``,
with the exit code the error carries (1 operation failed, 2 bad input or config); no
traceback is shown for them.

Every run imports every command module (typer builds the whole command tree, options and
all), so what they import at module level is paid by ``--help`` and by ``mailoauth token``
behind msmtp's ``passwordeval``, message after message. The heavy stacks — the web
console and API, the relay, the mail clients — are imported inside the commands that use
them; ``tests/unit/test_cli_imports.py`` keeps them out, ``bench/cli.py`` times it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from mailoauth.cli.admin import register_admin_commands
from mailoauth.cli.apikeys import register_api_key_commands
from mailoauth.cli.context import CliContext
from mailoauth.cli.keys import register_key_commands
from mailoauth.cli.mail import register_mail_commands
from mailoauth.cli.objects import mailbox_app, provider_app, register_apply
from mailoauth.cli.queue import register_queue_commands
from mailoauth.cli.relay import register_relay_commands
from mailoauth.cli.serve import register_serve
from mailoauth.cli.tokens import register_token_commands
from mailoauth.config import Settings
from mailoauth.errors import MailoauthError

__all__ = ["app", "main"]

app = typer.Typer(
    name="mailoauth",
    help="OAuth2 for SMTP, IMAP and POP3: providers, mailboxes, tokens, relay and console.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option(
            "--home",
            help="Data directory (default: $MAILOAUTH_HOME, else "
            "$XDG_DATA_HOME/mailoauth, else ~/.local/share/mailoauth).",
            show_default=False,
        ),
    ] = None,
) -> None:
    ctx.obj = CliContext(Settings.load(data_dir=home))


app.add_typer(provider_app, name="provider")
app.add_typer(mailbox_app, name="mailbox")
register_apply(app)
register_serve(app)
register_token_commands(app)
register_key_commands(app)
register_mail_commands(app)
register_queue_commands(app)
register_relay_commands(app)
register_api_key_commands(app)
register_admin_commands(app)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except MailoauthError as err:
        typer.echo(f"error: {err}", err=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
