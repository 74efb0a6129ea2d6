"""``mailoauth api-key add | list | revoke``: the REST API's keys, one per client.

``add`` prints the key once, on stdout alone (so ``KEY=$(mailoauth api-key add ci --scope
send)`` works); the store keeps only a verifier of it (:mod:`mailoauth.web.api.keys`).
Scopes nest: ``admin`` ⊃ ``send`` ⊃ ``read``. A revoked key stops working at once and
stays listed, with when it was last used.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from mailoauth.cli.context import store_of
from mailoauth.cli.render import print_json, print_table

if TYPE_CHECKING:
    from mailoauth.store import ApiKey

__all__ = ["Scope", "api_key_app", "register_api_key_commands"]


class Scope(StrEnum):
    """The choices of ``--scope``: :class:`mailoauth.web.api.keys.ApiScope`'s values.

    Repeated here because every CLI run builds every command's options, and importing the
    web layer for them would slow every command down; ``tests/unit/test_cli_imports.py``
    keeps the two the same.
    """

    READ = "read"
    SEND = "send"
    ADMIN = "admin"


api_key_app = typer.Typer(
    help="Keys of REST API clients (/api/v1), with scopes read, send or admin.",
    no_args_is_help=True,
)


def register_api_key_commands(app: typer.Typer) -> None:
    app.add_typer(api_key_app, name="api-key")


def _when(at: datetime | None) -> str:
    return "-" if at is None else f"{at:%Y-%m-%d %H:%M} UTC"


@api_key_app.command("add")
def add_command(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Who the key is for (shown in the service log).")
    ],
    scope: Annotated[
        list[Scope],
        typer.Option(
            "--scope",
            help="read (configuration and status), send (+ send mail), admin (everything).",
        ),
    ],
) -> None:
    """Make a key; prints it once (it cannot be shown again)."""
    from mailoauth.web.api.keys import ApiScope, create_key, granted

    with store_of(ctx) as store:
        key, text = create_key(store, name, [ApiScope(s) for s in scope])
    typer.echo(text.reveal())
    widest = granted(key.scopes)
    typer.echo(
        f"(api key {name}, scope {widest.value if widest else '-'}: send it as "
        "'Authorization: Bearer <key>'; it is shown only now)",
        err=True,
    )


def _json(key: ApiKey) -> dict[str, object]:
    return {
        "name": key.name,
        "prefix": f"mo_{key.prefix}",
        "scopes": list(key.scopes),
        "created_at": key.created_at.isoformat(),
        "last_used_at": key.last_used_at.isoformat() if key.last_used_at else None,
        "revoked_at": key.revoked_at.isoformat() if key.revoked_at else None,
    }


@api_key_app.command("list")
def list_command(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every key: name, prefix, scopes, created, last used, revoked (never the key)."""
    from mailoauth.web.api.keys import shown_prefix

    with store_of(ctx) as store:
        keys = store.list_api_keys()
    if as_json:
        print_json([_json(k) for k in keys])
        return
    if not keys:
        typer.echo("no API key; `mailoauth api-key add NAME --scope read` makes one")
        return
    rows = [
        [
            k.name,
            shown_prefix(k),
            ",".join(k.scopes),
            _when(k.created_at),
            _when(k.last_used_at),
            _when(k.revoked_at) if k.revoked else "active",
        ]
        for k in keys
    ]
    print_table("API keys", ["name", "key", "scopes", "created", "last used", "status"], rows)


@api_key_app.command("revoke")
def revoke_command(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The key's name.")],
) -> None:
    """Revoke a key: it stops working at once (it stays listed)."""
    from mailoauth.web.api.keys import shown_prefix

    with store_of(ctx) as store:
        key = store.revoke_api_key(name, now=datetime.now(UTC))
    assert key.revoked_at is not None
    typer.echo(f"api key {name} ({shown_prefix(key)}) revoked at {_when(key.revoked_at)}")
