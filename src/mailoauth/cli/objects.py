"""``mailoauth provider …``, ``mailoauth mailbox …`` and ``mailoauth apply FILE``.

``add`` turns its options into the same raw table a TOML file would hold and builds it with
:mod:`mailoauth.configfile`, so the CLI and ``apply`` share one validation path. Errors
then name the *option* (``--outgoing-port``) rather than the TOML path.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from mailoauth.cli import render
from mailoauth.cli.context import settings_of, store_of
from mailoauth.configfile import (
    SecretResolver,
    build_mailbox,
    build_provider,
    load_config_file,
)
from mailoauth.errors import ConfigError
from mailoauth.models import Provider
from mailoauth.records import public_view
from mailoauth.store import Change

__all__ = ["mailbox_app", "provider_app", "register_apply"]

provider_app = typer.Typer(
    help="App registrations at Google, Microsoft or any OAuth2 server.", no_args_is_help=True
)
mailbox_app = typer.Typer(help="Mail accounts used through a provider.", no_args_is_help=True)

_SPECIAL_OPTIONS = {
    "outgoing.transport": "--outgoing",
    "incoming.transport": "--incoming",
    "addresses": "--address",
    "scopes": "--scope",
    "sasl_mechanism": "--sasl",
    "service_account_email": "--service-account-json",
    "service_account_key_id": "--service-account-json",
    "service_account_key": "--service-account-json",
}
_SECTIONS = {"provider": "providers", "mailbox": "mailboxes"}
SECRET_HELP = 'Literal, "env:NAME", "file:PATH" or "-" (stdin). Prefer env:/file:/- over a literal.'

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Replace = Annotated[bool, typer.Option("--replace", help="Overwrite an existing one of that name.")]


@contextmanager
def _options_named(kind: str, name: str) -> Iterator[None]:
    """Re-raise a ConfigError about ``kinds.NAME.field`` as one about ``--field``."""
    try:
        yield
    except ConfigError as err:
        prefix = f"{_SECTIONS[kind]}.{name}."
        field = err.field.removeprefix(prefix)
        if field == err.field and "." in field and not field.startswith(("outgoing", "incoming")):
            raise
        field = re.sub(r"\[\d+\]$", "", field)
        option = _SPECIAL_OPTIONS.get(field) or "--" + field.replace(".", "-").replace("_", "-")
        raise ConfigError(option, err.problem, err.fix) from None


def _resolver() -> SecretResolver:
    return SecretResolver(stdin=_read_stdin_once())


def _read_stdin_once() -> Callable[[], str]:
    used: list[bool] = []

    def read() -> str:
        if used:
            raise ConfigError("-", "only one option can read standard input", "use env: or file:")
        used.append(True)
        return sys.stdin.read()

    return read


def _given(**options: Any) -> dict[str, Any]:
    return {key: value for key, value in options.items() if value not in (None, [], ())}


def _refuse_existing(kind: str, name: str, exists: Callable[[str], object], replace: bool) -> None:
    if replace:
        return
    try:
        exists(name)
    except LookupError:
        return
    raise ConfigError(
        f"{_SECTIONS[kind]}.{name}",
        "already exists",
        f"pass --replace to overwrite it, or `mailoauth {kind} remove {name}` first",
    )


def _finder(get: Callable[[str], Provider]) -> Callable[[str], Provider | None]:
    """``get`` that answers None for a missing name instead of raising."""

    def find(name: str) -> Provider | None:
        try:
            return get(name)
        except LookupError:
            return None

    return find


def _report(kind: str, name: str, change: Change) -> None:
    typer.echo(f"{change.value} {kind} {name}")


# --- providers ----------------------------------------------------------------------


@provider_app.command("add")
def provider_add(
    ctx: typer.Context,
    name: str,
    kind: Annotated[str, typer.Option(help="google, microsoft or generic.")],
    client_id: Annotated[str, typer.Option(help="The app's client (application) id.")],
    client_secret: Annotated[str | None, typer.Option(help=SECRET_HELP)] = None,
    client_auth: Annotated[
        str | None,
        typer.Option(
            help="client_secret_post (default), client_secret_basic, private_key_jwt, none."
        ),
    ] = None,
    client_secret_expires: Annotated[str | None, typer.Option(help="YYYY-MM-DD.")] = None,
    tenant: Annotated[
        str | None,
        typer.Option(help="Microsoft: directory id, domain, common, organizations, consumers."),
    ] = None,
    cloud: Annotated[
        str | None, typer.Option(help="Microsoft: global (default), usgov, china.")
    ] = None,
    private_key: Annotated[
        str | None, typer.Option(help="private_key_jwt: PEM key. " + SECRET_HELP)
    ] = None,
    key_id: Annotated[str | None, typer.Option(help="private_key_jwt: key id (kid).")] = None,
    certificate: Annotated[
        Path | None, typer.Option(help="private_key_jwt: PEM certificate file (x5t).")
    ] = None,
    authorization_url: Annotated[str | None, typer.Option(help="generic only.")] = None,
    token_url: Annotated[str | None, typer.Option(help="generic only.")] = None,
    device_url: Annotated[str | None, typer.Option(help="generic only.")] = None,
    revocation_url: Annotated[str | None, typer.Option(help="generic only.")] = None,
    scope: Annotated[
        list[str] | None, typer.Option(help="generic only; repeat for several.")
    ] = None,
    redirect_uri: Annotated[
        str | None, typer.Option(help="Default: BASE_URL/oauth/callback.")
    ] = None,
    description: Annotated[str | None, typer.Option()] = None,
    replace: Replace = False,
) -> None:
    """Add a provider (an app registration)."""
    raw = _given(
        kind=kind,
        client_id=client_id,
        client_secret=client_secret,
        client_auth=client_auth,
        client_secret_expires=client_secret_expires,
        tenant=tenant,
        cloud=cloud,
        private_key=private_key,
        key_id=key_id,
        certificate=_read_text("--certificate", certificate),
        authorization_url=authorization_url,
        token_url=token_url,
        device_url=device_url,
        revocation_url=revocation_url,
        scopes=scope,
        redirect_uri=redirect_uri,
        description=description,
    )
    with _options_named("provider", name):
        provider = build_provider(name, raw, resolver=_resolver())
        with store_of(ctx) as store:
            _refuse_existing("provider", name, store.get_provider, replace)
            _report("provider", name, store.put_provider(provider))


def _read_text(option: str, path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            option, f"cannot read {path} ({exc.strerror})", "check the path"
        ) from None


@provider_app.command("list")
def provider_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List providers."""
    with store_of(ctx) as store:
        providers = store.list_providers()
        counts = {p.name: len(store.list_mailboxes(provider=p.name)) for p in providers}
    if as_json:
        render.print_json([public_view(p) for p in providers])
        return
    today = date.today()
    render.print_table(
        f"{len(providers)} provider(s)",
        ("NAME", "KIND", "CLIENT ID", "TENANT", "CLIENT AUTH", "MAILBOXES", "NOTE"),
        (
            (
                p.name,
                p.kind.value,
                p.client_id,
                p.tenant or "-",
                p.client_auth.value,
                str(counts[p.name]),
                render.secret_expiry_note(p, today),
            )
            for p in providers
        ),
    )


@provider_app.command("show")
def provider_show(ctx: typer.Context, name: str, as_json: Json = False) -> None:
    """Show one provider, with its endpoints and the redirect URI to register."""
    settings = settings_of(ctx)
    with store_of(ctx) as store:
        provider = store.get_provider(name)
        count = len(store.list_mailboxes(provider=name))
    if as_json:
        data = public_view(provider)
        data["redirect_uri"] = provider.effective_redirect_uri(settings.base_url)
        data["endpoints"] = public_view(provider.endpoints())
        render.print_json(data)
    else:
        render.print_rows(render.provider_rows(provider, settings.base_url, count, date.today()))


@provider_app.command("remove")
def provider_remove(ctx: typer.Context, name: str) -> None:
    """Remove a provider that no mailbox uses."""
    with store_of(ctx) as store:
        store.delete_provider(name)
    _report("provider", name, Change.REMOVED)


# --- mailboxes ----------------------------------------------------------------------


@mailbox_app.command("add")
def mailbox_add(
    ctx: typer.Context,
    name: str,
    provider: Annotated[str, typer.Option(help="Name of the provider to use.")],
    login: Annotated[str, typer.Option(help="User name sent in XOAUTH2 (e.g. the UPN).")],
    grant: Annotated[
        str | None,
        typer.Option(
            help="authorization_code (default), device_code, password, "
            "client_credentials, service_account."
        ),
    ] = None,
    address: Annotated[
        list[str] | None, typer.Option(help="From address; repeat for aliases.")
    ] = None,
    display_name: Annotated[str | None, typer.Option()] = None,
    reply_to: Annotated[str | None, typer.Option()] = None,
    outgoing: Annotated[str | None, typer.Option(help="smtp, graph or gmail_api.")] = None,
    outgoing_host: Annotated[
        str | None, typer.Option(help="Default: the provider preset's.")
    ] = None,
    outgoing_port: Annotated[
        int | None, typer.Option(help="Default: from the security mode.")
    ] = None,
    outgoing_security: Annotated[
        str | None, typer.Option(help="starttls (default), ssl, none.")
    ] = None,
    outgoing_alternate_host: Annotated[str | None, typer.Option(help="Failover SMTP host.")] = None,
    outgoing_alternate_port: Annotated[int | None, typer.Option()] = None,
    outgoing_ehlo_name: Annotated[
        str | None, typer.Option(help="SMTP EHLO name (default: this host's FQDN).")
    ] = None,
    incoming: Annotated[str | None, typer.Option(help="imap, pop3, graph or gmail_api.")] = None,
    incoming_host: Annotated[str | None, typer.Option()] = None,
    incoming_port: Annotated[int | None, typer.Option()] = None,
    incoming_security: Annotated[
        str | None, typer.Option(help="ssl (default), starttls, none.")
    ] = None,
    incoming_folder: Annotated[str | None, typer.Option(help="Default INBOX.")] = None,
    incoming_poll_interval: Annotated[int | None, typer.Option(help="Minutes, default 5.")] = None,
    incoming_after_fetch: Annotated[
        str | None, typer.Option(help="keep, seen, delete or move:FOLDER.")
    ] = None,
    incoming_deliver: Annotated[
        str | None,
        typer.Option(help="Where fetched mail goes: maildir:/path or webhook:https://..."),
    ] = None,
    allow_insecure: Annotated[
        bool, typer.Option(help="Permit security none to a non-loopback host.")
    ] = False,
    scope: Annotated[
        list[str] | None, typer.Option(help="Override the derived scopes; repeat.")
    ] = None,
    username: Annotated[
        str | None, typer.Option(help="grant password: user name (default: login).")
    ] = None,
    password: Annotated[str | None, typer.Option(help="grant password: " + SECRET_HELP)] = None,
    service_account_json: Annotated[
        str | None,
        typer.Option(help='grant service_account: the Google JSON key, e.g. "file:key.json".'),
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option(help="grant service_account: user to impersonate (default: login)."),
    ] = None,
    sasl: Annotated[str | None, typer.Option(help="auto (default), xoauth2, oauthbearer.")] = None,
    debug: Annotated[bool, typer.Option(help="Keep redacted protocol transcripts.")] = False,
    description: Annotated[str | None, typer.Option()] = None,
    replace: Replace = False,
) -> None:
    """Add a mailbox."""
    insecure = {"allow_insecure": True} if allow_insecure else {}
    out = _given(
        transport=outgoing,
        host=outgoing_host,
        port=outgoing_port,
        security=outgoing_security,
        alternate_host=outgoing_alternate_host,
        alternate_port=outgoing_alternate_port,
        ehlo_name=outgoing_ehlo_name,
    )
    inc = _given(
        transport=incoming,
        host=incoming_host,
        port=incoming_port,
        security=incoming_security,
        folder=incoming_folder,
        poll_interval=incoming_poll_interval,
        after_fetch=incoming_after_fetch,
        deliver=incoming_deliver,
    )
    raw = _given(
        provider=provider,
        login=login,
        grant=grant,
        addresses=address,
        display_name=display_name,
        reply_to=reply_to,
        scopes=scope,
        username=username,
        password=password,
        service_account_json=service_account_json,
        subject=subject,
        sasl_mechanism=sasl,
        description=description,
        outgoing={**out, **insecure} if out else None,
        incoming={**inc, **insecure} if inc else None,
    )
    if debug:
        raw["debug"] = True
    with _options_named("mailbox", name), store_of(ctx) as store:
        mailbox = build_mailbox(name, raw, _finder(store.get_provider), resolver=_resolver())
        _refuse_existing("mailbox", name, store.get_mailbox, replace)
        _report("mailbox", name, store.put_mailbox(mailbox))


@mailbox_app.command("list")
def mailbox_list(ctx: typer.Context, as_json: Json = False) -> None:
    """List mailboxes with their authorization status."""
    with store_of(ctx) as store:
        rows = [
            (m, store.get_provider(m.provider), store.get_grant(m.name))
            for m in store.list_mailboxes()
        ]
    if as_json:
        render.print_json([render.mailbox_json(m, p, g) for m, p, g in rows])
        return
    render.print_table(
        f"{len(rows)} mailbox(es)",
        ("NAME", "PROVIDER", "GRANT", "LOGIN", "OUTGOING", "INCOMING", "STATUS"),
        (
            (
                m.name,
                p.name,
                m.grant.value,
                m.login,
                m.outgoing.transport.value if m.outgoing else "-",
                m.incoming.transport.value if m.incoming else "-",
                render.grant_state(g),
            )
            for m, p, g in rows
        ),
    )


@mailbox_app.command("show")
def mailbox_show(ctx: typer.Context, name: str, as_json: Json = False) -> None:
    """Show one mailbox, with the scopes it will request."""
    with store_of(ctx) as store:
        mailbox = store.get_mailbox(name)
        provider = store.get_provider(mailbox.provider)
        grant = store.get_grant(name)
    if as_json:
        render.print_json(render.mailbox_json(mailbox, provider, grant))
    else:
        render.print_rows(render.mailbox_rows(mailbox, provider, grant))


@mailbox_app.command("remove")
def mailbox_remove(ctx: typer.Context, name: str) -> None:
    """Remove a mailbox and forget its tokens."""
    with store_of(ctx) as store:
        store.delete_mailbox(name)
    _report("mailbox", name, Change.REMOVED)


# --- apply --------------------------------------------------------------------------


def register_apply(app: typer.Typer) -> None:
    @app.command("apply")
    def apply(
        ctx: typer.Context,
        file: Annotated[Path, typer.Argument(help="TOML file of [providers.*] and [mailboxes.*].")],
        prune: Annotated[
            bool, typer.Option(help="Also remove what the file does not name.")
        ] = False,
        dry_run: Annotated[
            bool, typer.Option(help="Report what would change; write nothing.")
        ] = False,
    ) -> None:
        """Create or update providers and mailboxes from a TOML file (idempotent)."""
        with store_of(ctx) as store:
            config = load_config_file(file, stored_provider=_finder(store.get_provider))
            reports = store.apply(config.providers, config.mailboxes, prune=prune, dry_run=dry_run)
        verb = "would be " if dry_run else ""
        for report in reports:
            typer.echo(f"{verb}{report.change.value} {report.kind} {report.name}")
        counts = {c: sum(r.change is c for r in reports) for c in Change}
        summary = ", ".join(f"{n} {c.value}" for c, n in counts.items() if n)
        typer.echo(f"{'dry run: ' if dry_run else ''}{summary or 'nothing to do'}")
