"""How providers and mailboxes look on a terminal: tables, ``show`` pages and JSON.

Secrets are never printed: a secret field shows as ``set`` or ``not set``. Client-secret
expiry is flagged 30 days ahead, because an expired Azure secret is the second most common
reason mail stops (after Google apps left in "Testing").
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from mailoauth.models import Grant, Mailbox, Provider, mailbox_scopes
from mailoauth.records import public_view

__all__ = [
    "mailbox_rows",
    "print_json",
    "print_rows",
    "print_table",
    "provider_rows",
    "secret_expiry_note",
]

EXPIRY_WARNING = timedelta(days=30)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=False))


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    from rich.console import Console  # rich loads only for the commands that print a table
    from rich.table import Table

    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console(soft_wrap=True).print(table)


def print_rows(rows: Sequence[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def secret_expiry_note(provider: Provider, today: date) -> str:
    expires = provider.client_secret_expires
    if expires is None:
        return ""
    if expires < today:
        return f"EXPIRED on {expires}: create a new client secret"
    if expires - today <= EXPIRY_WARNING:
        return f"expires {expires} (in {(expires - today).days} days): renew it soon"
    return f"expires {expires}"


def _secret_state(provider: Provider) -> str:
    if provider.client_secret is not None:
        return "client secret (hidden)"
    if provider.private_key is not None:
        return "private key (hidden)"
    return "none (public client)"


def provider_rows(
    provider: Provider, base_url: str, mailboxes: int, today: date
) -> list[tuple[str, str]]:
    endpoints = provider.endpoints()
    rows = [
        ("name", provider.name),
        ("kind", provider.kind.value),
        ("description", provider.description or "-"),
        ("client id", provider.client_id),
        ("client auth", provider.client_auth.value),
        ("credential", _secret_state(provider)),
    ]
    if note := secret_expiry_note(provider, today):
        rows.append(("client secret", note))
    if provider.tenant:
        rows.append(("tenant", provider.tenant))
        rows.append(("cloud", provider.cloud))
    if provider.key_id:
        rows.append(("key id", provider.key_id))
    if provider.certificate:
        rows.append(("certificate", "set"))
    rows += [
        ("authorization url", endpoints.authorization_url or "-"),
        ("token url", endpoints.token_url),
        ("device url", endpoints.device_url or "-"),
        ("revocation url", endpoints.revocation_url or "-"),
        (
            "redirect uri",
            provider.effective_redirect_uri(base_url)
            + ("" if provider.redirect_uri else "  (default; register exactly this)"),
        ),
    ]
    if provider.scopes:
        rows.append(("scopes", " ".join(provider.scopes)))
    rows.append(("mailboxes", str(mailboxes)))
    return rows


def grant_state(grant: Grant | None) -> str:
    if grant is None:
        return "not authorized"
    return grant.status.value.replace("_", " ")


def _server(settings: Any) -> str:
    if settings is None:
        return "-"
    if settings.host is None:
        return str(settings.transport.value)
    return f"{settings.transport.value} {settings.host}:{settings.port} ({settings.security.value})"


def mailbox_rows(
    mailbox: Mailbox, provider: Provider, grant: Grant | None
) -> list[tuple[str, str]]:
    rows = [
        ("name", mailbox.name),
        ("provider", f"{provider.name} ({provider.kind.value})"),
        ("grant", mailbox.grant.value),
        ("login", mailbox.login),
        ("addresses", ", ".join(mailbox.addresses) or "-"),
        ("display name", mailbox.display_name or "-"),
        ("reply-to", mailbox.reply_to or "-"),
        ("outgoing", _server(mailbox.outgoing)),
    ]
    if mailbox.outgoing is not None and mailbox.outgoing.alternate_host:
        rows.append(
            ("alternate", f"{mailbox.outgoing.alternate_host}:{mailbox.outgoing.alternate_port}")
        )
    rows.append(("incoming", _server(mailbox.incoming)))
    if mailbox.incoming is not None:
        inc = mailbox.incoming
        rows.append(
            ("fetch", f"folder {inc.folder}, every {inc.poll_interval} min, then {inc.after_fetch}")
        )
    scopes = mailbox_scopes(mailbox, provider)
    rows.append(
        (
            "scopes",
            (" ".join(scopes) or "-") + ("" if mailbox.scopes is None else "  (set on mailbox)"),
        )
    )
    if mailbox.username:
        rows.append(("username", mailbox.username))
        rows.append(("password", "set (hidden)"))
    if mailbox.service_account_email:
        rows.append(("service account", mailbox.service_account_email))
        rows.append(("impersonates", mailbox.subject or "-"))
    rows += [
        ("sasl", mailbox.sasl_mechanism.value),
        ("debug", "on" if mailbox.debug else "off"),
        ("status", grant_state(grant)),
    ]
    if grant is not None and grant.last_error:
        rows.append(("last error", grant.last_error))
    return rows


def mailbox_json(mailbox: Mailbox, provider: Provider, grant: Grant | None) -> dict[str, Any]:
    data = public_view(mailbox)
    data["effective_scopes"] = list(mailbox_scopes(mailbox, provider))
    data["status"] = grant.status.value if grant else "not_authorized"
    return data


def _ago(when: datetime | None, now: datetime) -> str:
    if when is None:
        return "-"
    seconds = int((when - now).total_seconds())
    span = abs(seconds)
    text = (
        f"{span // 86400}d"
        if span >= 86400
        else f"{span // 3600}h"
        if span >= 3600
        else f"{span // 60}m"
    )
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def _status_note(provider: Provider, grant: Grant | None, now: datetime) -> str:
    notes = []
    if grant is not None and grant.last_error:
        notes.append(grant.last_error)
    secret = secret_expiry_note(provider, now.date())
    if secret and ("EXPIRED" in secret or "renew" in secret):
        notes.append(f"client secret {secret}")
    return "; ".join(notes)


def status_row(
    mailbox: Mailbox, provider: Provider, grant: Grant | None, now: datetime
) -> tuple[str, ...]:
    return (
        mailbox.name,
        mailbox.grant.value,
        grant_state(grant),
        _ago(grant.expires_at if grant else None, now),
        _ago(grant.refreshed_at if grant else None, now),
        _status_note(provider, grant, now),
    )


def status_json(
    mailbox: Mailbox, provider: Provider, grant: Grant | None, now: datetime
) -> dict[str, Any]:
    return {
        "mailbox": mailbox.name,
        "provider": provider.name,
        "grant": mailbox.grant.value,
        "status": grant.status.value if grant else "not_authorized",
        "expires_at": grant.expires_at.isoformat() if grant and grant.expires_at else None,
        "refreshed_at": grant.refreshed_at.isoformat() if grant and grant.refreshed_at else None,
        "last_error": grant.last_error if grant else None,
        "client_secret_expires": (
            provider.client_secret_expires.isoformat() if provider.client_secret_expires else None
        ),
        "note": _status_note(provider, grant, now),
    }
