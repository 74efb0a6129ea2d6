"""``mailoauth relay-user add | set | list | remove | reset-password`` and ``mailoauth relay``.

A relay user is one password-only application's login to the local relay, bound to one
mailbox. Its password is generated, printed once by ``add`` / ``reset-password`` and
stored only as a hash (:mod:`mailoauth.relay.users`). ``mailoauth serve`` runs the SMTP
relay beside the web service; ``mailoauth relay`` runs it alone, in the foreground.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated

import typer

from mailoauth.cli.context import settings_of, store_of
from mailoauth.cli.render import print_json, print_table
from mailoauth.cli.serve import log_to_stderr
from mailoauth.config import DEFAULT_RELAY_SMTP, Settings
from mailoauth.errors import ConfigError

if TYPE_CHECKING:
    from mailoauth.relay import RelayMode, RelayProtocol
    from mailoauth.store import RelayUser, Store

__all__ = ["register_relay_commands", "relay_user_app"]

log = logging.getLogger("mailoauth.relay")

relay_user_app = typer.Typer(
    help="Local logins of password-only applications (PBXs, printers) to the relay.",
    no_args_is_help=True,
)


def register_relay_commands(app: typer.Typer) -> None:
    app.add_typer(relay_user_app, name="relay-user")
    app.command("relay")(relay_command)


def _protocols(text: str) -> list[RelayProtocol]:
    from mailoauth.relay import RelayProtocol  # the relay (aiosmtpd): only for its commands

    names = [part.strip().lower() for part in text.split(",") if part.strip()]
    try:
        return [RelayProtocol(name) for name in names]
    except ValueError as exc:
        raise ConfigError(
            "--protocols", f"{text!r} names an unknown protocol", "use smtp, imap and/or pop3"
        ) from exc


def _mode(text: str) -> RelayMode:
    from mailoauth.relay import RelayMode

    try:
        return RelayMode(text.strip().lower())
    except ValueError:
        raise ConfigError("--mode", f"{text!r} is not a mode", "use queue or passthrough") from None


_MODE_HELP = (
    "queue: store, answer 250, deliver (retried); passthrough: relay the SMTP transaction "
    "live and answer with the upstream's replies (docs/relay.md)."
)


_LOGINS = {
    "smtp": "AUTH PLAIN or LOGIN",
    "imap": "LOGIN or AUTHENTICATE PLAIN",
    "pop3": "USER/PASS or AUTH PLAIN",
}


def _where(settings: Settings, protocols: Sequence[str] = ("smtp",)) -> str:
    """Where the relay listens for each of ``protocols``, and how to log in there."""
    listeners = {
        "smtp": (settings.relay_smtp, settings.relay_tls),
        "imap": (settings.relay_imap, settings.relay_imap_tls),
        "pop3": (settings.relay_pop3, settings.relay_pop3_tls),
    }
    parts = []
    for name in protocols:
        address, tls = listeners[name]
        if address is None:
            parts.append(f"the {name.upper()} relay is off (MAILOAUTH_RELAY_{name.upper()})")
            continue
        mode = "no TLS" if tls is None else tls.mode.upper()
        parts.append(f"{name.upper()} relay {address[0]}:{address[1]}, {mode}, {_LOGINS[name]}")
    return "; ".join(parts)


def _show_password(settings: Settings, user: RelayUser, password: str) -> None:
    typer.echo(f"login:    {user.name}")
    typer.echo(f"password: {password}")
    typer.echo(
        f"({_where(settings, user.protocols)}; the password is shown only now: put it in the "
        "application)",
        err=True,
    )


@relay_user_app.command("add")
def add_command(
    ctx: typer.Context,
    app_name: Annotated[str, typer.Argument(metavar="APP", help="The application's login.")],
    mailbox: Annotated[str, typer.Option("--mailbox", help="The mailbox it sends through.")],
    allow_from: Annotated[
        list[str],
        typer.Option(
            "--allow-from",
            help="A From address it may use (repeat; default: all of the mailbox's addresses).",
        ),
    ] = [],  # noqa: B006
    protocols: Annotated[
        str, typer.Option("--protocols", help="Comma-separated: smtp, imap, pop3.")
    ] = "smtp",
    mode: Annotated[str, typer.Option("--mode", help=_MODE_HELP)] = "queue",
) -> None:
    """Create a login for an application; prints its generated password once."""
    from mailoauth.relay import add_user

    settings = settings_of(ctx)
    with store_of(ctx) as store:
        user, password = add_user(
            store,
            app_name,
            mailbox,
            allow_from=allow_from,
            protocols=_protocols(protocols),
            mode=_mode(mode),
        )
    _show_password(settings, user, password.reveal())


@relay_user_app.command("set")
def set_command(
    ctx: typer.Context,
    app_name: Annotated[str, typer.Argument(metavar="APP", help="The application's login.")],
    mode: Annotated[str, typer.Option("--mode", help=_MODE_HELP)],
) -> None:
    """Change a login's mode; its next login uses it (the password stays)."""
    from mailoauth.relay import set_mode

    with store_of(ctx) as store:
        user = set_mode(store, app_name, _mode(mode))
    typer.echo(f"relay user {user.name}: mode {user.mode.value}")


def _allowed(store: Store, user: RelayUser) -> str:
    if user.allow_from:
        return ", ".join(user.allow_from)
    return ", ".join(store.get_mailbox(user.mailbox).addresses) + " (the mailbox's)"


@relay_user_app.command("list")
def list_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The relay users: mailbox, mode, allowed From, protocols (never a password)."""
    with store_of(ctx) as store:
        users = store.list_relay_users()
        allowed = {u.name: _allowed(store, u) for u in users}
    if as_json:
        print_json(
            [
                {
                    "name": u.name,
                    "mailbox": u.mailbox,
                    "allow_from": list(u.allow_from),
                    "protocols": list(u.protocols),
                    "mode": u.mode.value,
                    "created_at": u.created_at.isoformat(),
                    "password_set_at": u.password_set_at.isoformat(),
                }
                for u in users
            ]
        )
        return
    if not users:
        typer.echo("no relay user; `mailoauth relay-user add APP --mailbox NAME` makes one")
        return
    rows = [
        [
            u.name,
            u.mailbox,
            u.mode.value,
            allowed[u.name],
            ",".join(u.protocols),
            f"{u.password_set_at:%Y-%m-%d}",
        ]
        for u in users
    ]
    columns = ["login", "mailbox", "mode", "allowed From", "protocols", "password set"]
    print_table("Relay users", columns, rows)


@relay_user_app.command("remove")
def remove_command(
    ctx: typer.Context,
    app_name: Annotated[str, typer.Argument(metavar="APP", help="The application's login.")],
) -> None:
    """Delete a login; the application can no longer log in."""
    with store_of(ctx) as store:
        store.delete_relay_user(app_name)
    typer.echo(f"relay user {app_name} removed")


@relay_user_app.command("reset-password")
def reset_command(
    ctx: typer.Context,
    app_name: Annotated[str, typer.Argument(metavar="APP", help="The application's login.")],
) -> None:
    """A new generated password, printed once; the old one stops working at once."""
    from mailoauth.relay import reset_password

    settings = settings_of(ctx)
    with store_of(ctx) as store:
        user, password = reset_password(store, app_name)
    _show_password(settings, user, password.reveal())


def relay_command(ctx: typer.Context) -> None:
    """Run the relay (SMTP, IMAP, POP3) alone, in the foreground (``mailoauth serve``
    runs it too).

    Accepted mail is queued and a delivery run starts at once; retries need the service's
    scheduler (`mailoauth serve`) or `mailoauth queue run`. SIGTERM or Ctrl-C stop it."""
    settings = settings_of(ctx)
    if settings.relay_smtp is None and settings.relay_imap is None and settings.relay_pop3 is None:
        raise ConfigError(
            "MAILOAUTH_RELAY_SMTP",
            "is off, and so are MAILOAUTH_RELAY_IMAP and MAILOAUTH_RELAY_POP3",
            f"set one to a loopback HOST:PORT, e.g. {DEFAULT_RELAY_SMTP} (any address once "
            "MAILOAUTH_RELAY_TLS_CERT and MAILOAUTH_RELAY_TLS_KEY are set)",
        )
    log_to_stderr()
    with store_of(ctx) as store:
        asyncio.run(_run_relay(settings, store))
    typer.echo("mailoauth relay stopped", err=True)


async def _run_relay(settings: Settings, store: Store) -> None:
    from mailoauth import queue
    from mailoauth.mail.trust import http_client
    from mailoauth.oauth.tokens import TokenService
    from mailoauth.relay.service import start_relays

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with http_client(settings.ca_file) as http:
        tokens = TokenService(store, http)
        drain = functools.partial(queue.drain, store, tokens, http, ca_file=settings.ca_file)
        relays = await start_relays(settings, store, tokens, drain, strict=True)
        try:
            await stop.wait()
        finally:
            await relays.stop()
            await tokens.drain()
