"""``mailoauth admin create | list | remove | reset-password``: the console's admins.

Passwords are asked twice on the terminal (never echoed), or read from standard input
with ``--password-stdin`` (scripts, CI: ``printf %s "$PW" | mailoauth admin create ops
--password-stdin``; one trailing newline is dropped). They are never accepted as an
option: options end up in shell histories and ``ps``. Every change is written to the audit
log (source ``cli``). The web stack is imported only by these commands, so other commands
start as fast as before.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from mailoauth.cli.context import store_of
from mailoauth.cli.render import print_json, print_table
from mailoauth.errors import ConfigError
from mailoauth.secret import Secret

__all__ = ["admin_app", "register_admin_commands"]

admin_app = typer.Typer(
    help="Administrators of the web console (names and passwords; never shown).",
    no_args_is_help=True,
)

_NAME = typer.Argument(metavar="NAME", help="The admin's login name.")
_STDIN_HELP = "Read the password from standard input instead of asking on the terminal."


def register_admin_commands(app: typer.Typer) -> None:
    app.add_typer(admin_app, name="admin")


def _read_password(from_stdin: bool) -> Secret:
    if from_stdin:
        text = sys.stdin.read()
        text = text.removesuffix("\n").removesuffix("\r")
        if not text:
            raise ConfigError("--password-stdin", "standard input was empty", "pipe the password")
        return Secret(text)
    if not sys.stdin.isatty():
        raise ConfigError(
            "password",
            "there is no terminal to ask for it",
            "pipe it in with --password-stdin",
        )
    return Secret(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@admin_app.command("create")
def create_command(
    ctx: typer.Context,
    name: Annotated[str, _NAME],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help=_STDIN_HELP)] = False,
) -> None:
    """Create an admin who can log in to the console."""
    from mailoauth.web.console.accounts import check_admin_name, create_admin

    check_admin_name(name)  # before asking for a password
    password = _read_password(password_stdin)
    with store_of(ctx) as store:
        create_admin(store, name, password)
    typer.echo(f"admin {name} created; log in at the console's /login page")


@admin_app.command("list")
def list_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The admins, when they were created and last logged in (never a password)."""
    with store_of(ctx) as store:
        admins = store.list_admins()
    if as_json:
        print_json(
            [
                {
                    "name": a.name,
                    "created_at": a.created_at.isoformat(),
                    "password_set_at": a.password_set_at.isoformat(),
                    "last_login_at": a.last_login_at.isoformat() if a.last_login_at else None,
                }
                for a in admins
            ]
        )
        return
    if not admins:
        typer.echo("no admin; `mailoauth admin create NAME` makes one")
        return
    rows = [
        [
            a.name,
            f"{a.created_at:%Y-%m-%d}",
            f"{a.password_set_at:%Y-%m-%d}",
            f"{a.last_login_at:%Y-%m-%d %H:%M}" if a.last_login_at else "never",
        ]
        for a in admins
    ]
    print_table("Admins", ["name", "created", "password set", "last login (UTC)"], rows)


@admin_app.command("remove")
def remove_command(ctx: typer.Context, name: Annotated[str, _NAME]) -> None:
    """Delete an admin; their sessions end at once."""
    from mailoauth.web.console.accounts import remove_admin

    with store_of(ctx) as store:
        remove_admin(store, name)
        left = store.count_admins()
    typer.echo(f"admin {name} removed")
    if not left:
        typer.echo(
            "no admin is left: `mailoauth admin create NAME`, or restart `mailoauth serve` "
            "for a one-time setup link",
            err=True,
        )


@admin_app.command("reset-password")
def reset_command(
    ctx: typer.Context,
    name: Annotated[str, _NAME],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help=_STDIN_HELP)] = False,
) -> None:
    """Set a new password; the admin's sessions end (logged out everywhere)."""
    from mailoauth.web.console.accounts import reset_admin_password

    with store_of(ctx) as store:
        store.get_admin(name)  # a typo is reported before the password is asked
        ended = reset_admin_password(store, name, _read_password(password_stdin))
    typer.echo(f"password of admin {name} changed; {ended} session(s) ended")
