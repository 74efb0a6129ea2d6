"""Request bodies → models, through the builders ``mailoauth apply`` and the CLI use.

:func:`~mailoauth.configfile.build_provider` and ``build_mailbox`` do all the checking
(and fill in preset hosts, import a service-account key), so a body means exactly what
the same table in a TOML file means, with two differences an API needs:

* **Values are literal.** ``env:`` and ``file:`` references are read only from files
  and options on the admin's own machine; a request naming one is refused, so an API
  client can never make the service read its environment or files (a certificate
  ``file:/etc/...`` would otherwise come back in answers). ``literal:`` still escapes a
  value that starts with a prefix.
* **Secrets are write-only, so an omitted secret keeps the stored one** — a client that
  GETs an object, changes a field and PUTs it back (with ``{"set": true}`` dropped)
  changes only that field — as long as the new settings still use it (a password is
  dropped when the grant stops being ``password``). ``null`` removes a secret.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from pydantic import BaseModel

from mailoauth.configfile import build_mailbox, build_provider
from mailoauth.errors import ConfigError
from mailoauth.models import Mailbox, Provider
from mailoauth.secret import Secret
from mailoauth.web.api.schemas import secret_fields

__all__ = ["literal_secret", "mailbox_from_body", "provider_from_body"]

T = TypeVar("T")


def literal_secret(field: str, value: str) -> Secret:
    """A secret exactly as sent; ``env:`` / ``file:`` references are refused."""
    prefix, sep, rest = value.partition(":")
    if sep and prefix in ("env", "file"):
        raise ConfigError(
            field,
            f"{prefix}: references are read only from TOML files and CLI options",
            f'send the value itself (or "literal:{value}" if it really starts so)',
        )
    if sep and prefix == "literal":
        return Secret(rest)
    return Secret(value)


def _raw(body: BaseModel) -> dict[str, Any]:
    """The fields the client sent, as JSON values (enums as text, lists as lists)."""
    return body.model_dump(mode="json", exclude_unset=True)


def _build_keeping(
    build: Callable[[Mapping[str, Any]], T],
    raw: dict[str, Any],
    stored: object | None,
    names: tuple[str, ...],
    path: str,
) -> T:
    """``build(raw)`` with each stored secret the body leaves out put back, unless the
    new settings refuse it (then it is dropped, as if the client had sent null)."""
    kept = {
        name: value
        for name in names
        if name not in raw and (value := getattr(stored, name, None)) is not None
    }
    while True:
        try:
            return build({**raw, **kept})
        except ConfigError as err:
            field = err.field.removeprefix(f"{path}.")
            if field not in kept:
                raise
            del kept[field]


def provider_from_body(name: str, body: BaseModel, stored: Provider | None) -> Provider:
    raw = _raw(body)

    def build(data: Mapping[str, Any]) -> Provider:
        return build_provider(name, data, resolver=literal_secret)

    return _build_keeping(build, raw, stored, secret_fields(Provider), f"providers.{name}")


def mailbox_from_body(
    name: str,
    body: BaseModel,
    stored: Mailbox | None,
    lookup: Callable[[str], Provider | None],
) -> Mailbox:
    raw = _raw(body)
    if raw.get("service_account_json") is None:
        raw.pop("service_account_json", None)
    names = secret_fields(Mailbox)
    if "service_account_json" in raw:  # the key file brings its own key
        names = tuple(n for n in names if n != "service_account_key")

    def build(data: Mapping[str, Any]) -> Mailbox:
        return build_mailbox(name, data, lookup, resolver=literal_secret)

    return _build_keeping(build, raw, stored, names, f"mailboxes.{name}")
