"""Model ⇄ row conversion: the public part as JSON text, the secrets as one sealed blob.

:func:`mailoauth.records.split` separates a model's :class:`~mailoauth.secret.Secret` fields
from the rest; the rest becomes the ``data`` JSON (minus what has its own column), the
secrets become ``{"field": "clear text"}`` JSON sealed by :class:`~.crypto.Cipher` with the
row's identity (``b"providers:NAME"``) as associated data. A model without secrets stores
NULL. Nothing secret reaches a JSON column.

Reading runs the model's validation again (:func:`mailoauth.records.build`); a row that no
longer validates raises a ConfigError whose field starts with ``providers.NAME`` etc.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final

from mailoauth import records
from mailoauth.models import Grant, Mailbox, Provider

__all__ = [
    "GRANT_COLUMNS",
    "Sealer",
    "Unsealer",
    "aad",
    "grant_from_row",
    "grant_values",
    "mailbox_from_row",
    "mailbox_values",
    "provider_from_row",
    "provider_values",
]

#: ``(table, row name, secrets) -> blob``; ``(table, row name, blob) -> secrets``.
Sealer = Callable[[str, str, Mapping[str, str]], bytes | None]
Unsealer = Callable[[str, str, bytes | None], dict[str, str]]

#: Grant fields kept in their own columns (queried by the scheduler), besides ``mailbox``.
GRANT_COLUMNS: Final = ("status", "expires_at", "refreshed_at", "last_error_at")


def aad(table: str, name: str) -> bytes:
    """The associated data that binds a sealed blob to its row."""
    return f"{table}:{name}".encode()


def encode_secrets(secrets: Mapping[str, str]) -> bytes:
    return json.dumps(dict(secrets), sort_keys=True, separators=(",", ":")).encode()


def decode_secrets(plaintext: bytes) -> dict[str, str]:
    value = json.loads(plaintext)
    assert isinstance(value, dict)
    return {str(k): str(v) for k, v in value.items()}


def _json(public: Mapping[str, Any]) -> str:
    return json.dumps(public, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _load_json(text: str) -> dict[str, Any]:
    value = json.loads(text)
    assert isinstance(value, dict)
    return value


def _without(public: dict[str, Any], *names: str) -> dict[str, Any]:
    return {k: v for k, v in public.items() if k not in names}


# --- providers ----------------------------------------------------------------------


def provider_values(provider: Provider, seal: Sealer) -> dict[str, Any]:
    public, secrets = records.split(provider)
    return {
        "name": provider.name,
        "kind": provider.kind.value,
        "data": _json(_without(public, "name", "kind")),
        "secrets": seal("providers", provider.name, secrets),
    }


def provider_from_row(
    name: str, kind: str, data: str, blob: bytes | None, unseal: Unsealer
) -> Provider:
    public = {**_load_json(data), "name": name, "kind": kind}
    secrets = unseal("providers", name, blob)
    return records.build(Provider, public, secrets, path=f"providers.{name}")


# --- mailboxes ----------------------------------------------------------------------


def mailbox_values(mailbox: Mailbox, seal: Sealer) -> dict[str, Any]:
    public, secrets = records.split(mailbox)
    return {
        "name": mailbox.name,
        "data": _json(_without(public, "name", "provider")),
        "secrets": seal("mailboxes", mailbox.name, secrets),
    }


def mailbox_from_row(
    name: str, provider: str, data: str, blob: bytes | None, unseal: Unsealer
) -> Mailbox:
    public = {**_load_json(data), "name": name, "provider": provider}
    secrets = unseal("mailboxes", name, blob)
    return records.build(Mailbox, public, secrets, path=f"mailboxes.{name}")


# --- grants -------------------------------------------------------------------------


def grant_values(grant: Grant, seal: Sealer) -> dict[str, Any]:
    public, secrets = records.split(grant)
    values: dict[str, Any] = {name: getattr(grant, name) for name in GRANT_COLUMNS}
    values["status"] = grant.status.value
    values["data"] = _json(_without(public, "mailbox", *GRANT_COLUMNS))
    values["secrets"] = seal("grants", grant.mailbox, secrets)
    return values


def grant_from_row(
    mailbox: str,
    columns: Mapping[str, str | datetime | None],
    data: str,
    blob: bytes | None,
    unseal: Unsealer,
) -> Grant:
    public = {**_load_json(data), **columns, "mailbox": mailbox}
    secrets = unseal("grants", mailbox, blob)
    return records.build(Grant, public, secrets, path=f"grants.{mailbox}")
