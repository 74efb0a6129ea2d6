"""``mailoauth authorize | token | status | revoke``: grants and tokens from the shell.

``mailoauth token NAME`` prints a valid access token and nothing else on stdout, so it can
stand behind msmtp's ``passwordeval`` or mbsync's ``PassCmd``. Every command is one short
asyncio run around the same :class:`~mailoauth.oauth.tokens.TokenService` the service
uses.
"""

from __future__ import annotations

import asyncio
import sys
import webbrowser
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from mailoauth.cli import render
from mailoauth.cli.context import settings_of, store_of
from mailoauth.errors import AuthorizationNeeded, ConfigError
from mailoauth.models import Mailbox, Provider, mailbox_scopes
from mailoauth.providers import GrantType

if TYPE_CHECKING:
    import httpx

    from mailoauth.config import Settings
    from mailoauth.store import SqlStore

__all__ = ["register_token_commands"]

T = TypeVar("T")


def _run(work: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    from mailoauth.mail.trust import http_client  # httpx: only for the commands that call out

    async def main() -> T:
        async with http_client() as http:
            return await work(http)

    return asyncio.run(main())


def _now() -> datetime:
    return datetime.now(UTC)


def register_token_commands(app: typer.Typer) -> None:
    app.command("authorize")(authorize)
    app.command("token")(token)
    app.command("status")(status)
    app.command("revoke")(revoke)


def authorize(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The mailbox to authorize.")],
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Print the URL (first line) instead of opening it.")
    ] = False,
    paste: Annotated[
        bool, typer.Option("--paste", help="Paste the URL the browser was sent to (remote hosts).")
    ] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the browser.")] = 300,
) -> None:
    """Obtain a grant for a mailbox: browser consent, device code, or a direct token request."""
    from mailoauth.oauth.tokens import TokenService

    settings = settings_of(ctx)
    with store_of(ctx) as store:
        mailbox = store.get_mailbox(name)
        provider = store.get_provider(mailbox.provider)
        kind = mailbox.grant

        async def work(http: httpx.AsyncClient) -> str:
            if kind is GrantType.AUTHORIZATION_CODE:
                return await _authorization_code(
                    http, settings, store, mailbox, provider, no_browser, paste, timeout
                )
            if kind is GrantType.DEVICE_CODE:
                return await _device_code(http, store, mailbox, provider)
            service = TokenService(store, http)
            got = await service.refresh(name)
            until = f"{got.expires_at:%Y-%m-%d %H:%M} UTC"
            return f"authorized mailbox {name} ({kind.value}); token valid until {until}"

        typer.echo(_run(work))


async def _authorization_code(
    http: httpx.AsyncClient,
    settings: Settings,
    store: SqlStore,
    mailbox: Mailbox,
    provider: Provider,
    no_browser: bool,
    paste: bool,
    timeout: float,
) -> str:
    from mailoauth import oauth
    from mailoauth.oauth.loopback import wait_for_redirect
    from mailoauth.oauth.tokens import grant_from_token_set

    redirect_uri = provider.effective_redirect_uri(settings.base_url)
    scopes = mailbox_scopes(mailbox, provider)
    pending = oauth.begin_authorization(
        provider, mailbox, redirect_uri=redirect_uri, scopes=scopes, now=_now()
    )
    listening = None
    if not paste:
        # Bind before printing the URL, so a fast browser cannot arrive first.
        listening = asyncio.create_task(wait_for_redirect(redirect_uri, timeout=timeout))
        await asyncio.sleep(0)
    typer.echo(pending.url)
    sys.stdout.flush()
    if paste:
        typer.echo("Sign in, then paste the whole URL the browser was sent to:", err=True)
        callback = await asyncio.to_thread(sys.stdin.readline)
    else:
        assert listening is not None
        if not no_browser and not webbrowser.open(pending.url):
            typer.echo("open the URL above in a browser on this machine", err=True)
        callback = await listening
    code = oauth.parse_callback(pending, callback.strip(), now=_now())
    tokens = await oauth.exchange_code(http, provider, pending, code, now=_now())
    # A new authorization replaces the old grant entirely (and clears its error).
    await asyncio.to_thread(
        store.put_grant, grant_from_token_set(mailbox.name, tokens, _now(), None)
    )
    return _authorized(mailbox, tokens.scopes, tokens.subject)


def _authorized(mailbox: Mailbox, scopes: tuple[str, ...], subject: str | None) -> str:
    who = subject or mailbox.login
    return f"authorized mailbox {mailbox.name} as {who}; scopes: {' '.join(scopes) or '-'}"


async def _device_code(
    http: httpx.AsyncClient, store: SqlStore, mailbox: Mailbox, provider: Provider
) -> str:
    from mailoauth import oauth
    from mailoauth.oauth.tokens import grant_from_token_set

    scopes = mailbox_scopes(mailbox, provider)
    device = await oauth.start_device_authorization(http, provider, scopes, now=_now())
    where = device.verification_uri_complete or device.verification_uri
    typer.echo(
        f"To authorize mailbox {mailbox.name}, open {where} and enter the code {device.user_code}"
    )
    sys.stdout.flush()
    tokens = await oauth.poll_device(http, provider, device, now=_now)
    await asyncio.to_thread(
        store.put_grant, grant_from_token_set(mailbox.name, tokens, _now(), None)
    )
    return _authorized(mailbox, tokens.scopes, tokens.subject)


def token(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The mailbox.")],
) -> None:
    """Print a valid access token (for msmtp passwordeval, mbsync PassCmd, ...)."""
    from mailoauth.oauth.tokens import TokenService

    with store_of(ctx) as store:

        async def work(http: httpx.AsyncClient) -> str:
            service = TokenService(store, http)
            await service.get_access_token(name)
            # A refresh-ahead may have started: let it finish (never cut a rotation short),
            # and do not hand out a token whose grant the provider has just refused.
            for error in await service.drain():
                if isinstance(error, AuthorizationNeeded):
                    raise error
            return (await service.get_access_token(name)).token.reveal()

        typer.echo(_run(work))


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every mailbox with its grant state, expiry, last refresh and last error."""
    now = _now()
    with store_of(ctx) as store:
        rows = []
        for mailbox in store.list_mailboxes():
            provider = store.get_provider(mailbox.provider)
            rows.append((mailbox, provider, store.get_grant(mailbox.name)))
    if as_json:
        render.print_json([render.status_json(m, p, g, now) for m, p, g in rows])
        return
    render.print_table(
        f"{len(rows)} mailbox(es)",
        ("MAILBOX", "GRANT", "STATUS", "TOKEN EXPIRES", "REFRESHED", "NOTE"),
        (render.status_row(m, p, g, now) for m, p, g in rows),
    )


def revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The mailbox.")],
) -> None:
    """Revoke the mailbox's grant at the provider (where possible) and forget it here."""
    from mailoauth import oauth

    with store_of(ctx) as store:
        mailbox = store.get_mailbox(name)
        provider = store.get_provider(mailbox.provider)
        grant = store.get_grant(name)
        if grant is None:
            raise ConfigError(name, "has no grant to revoke", "see `mailoauth status`")

        async def work(http: httpx.AsyncClient) -> bool:
            token, hint = (
                (grant.refresh_token, "refresh_token")
                if grant.refresh_token is not None
                else (grant.access_token, "access_token")
            )
            if token is None:
                return False
            return await oauth.revoke(http, provider, token, token_type_hint=hint)

        revoked = _run(work)
        store.delete_grant(name)
    if revoked:
        typer.echo(f"revoked mailbox {name} at the provider and forgot its tokens")
    else:
        typer.echo(
            f"forgot the tokens of mailbox {name}; provider {provider.name} has no revocation "
            "endpoint: remove the app's access in the account's settings (Microsoft: "
            "myapps.microsoft.com, or the Enterprise application in Entra ID)"
        )
