"""Declarative configuration: a TOML file of ``[providers.NAME]`` and ``[mailboxes.NAME]``.

The same builders serve ``mailoauth apply FILE`` and ``mailoauth provider|mailbox add``
(the CLI turns its options into the same raw tables), so there is one validation path.

Secret values (client secrets, private keys, passwords, service-account keys) may be
written three ways, resolved once at load time:

* ``"env:NAME"``  the value of environment variable NAME (an unset variable is an error)
* ``"file:PATH"`` the contents of a file, relative to the TOML file; one trailing newline
  is dropped (PEM keys keep their own line breaks)
* anything else is the literal value; ``"literal:env:x"`` writes a literal that happens to
  start with a prefix.

A provider's ``certificate`` (public, but usually kept beside its key) takes ``file:`` and
``env:`` references too.

A Google service-account key file is imported whole with
``service_account_json = "file:key.json"``; its ``client_email``, ``private_key_id`` and
``private_key`` fill the mailbox's service-account fields.

Where a mailbox's server host is left out, the provider preset's host is filled in
(``smtp.gmail.com``, ``outlook.office365.com``, ...); ports follow the security mode.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailoauth import providers as presets
from mailoauth.errors import ConfigError
from mailoauth.models import IncomingSettings, Mailbox, OutgoingSettings, Provider
from mailoauth.providers import Security, Transport
from mailoauth.records import SecretLoader, build
from mailoauth.secret import Secret

__all__ = [
    "ConfigFile",
    "SecretResolver",
    "build_mailbox",
    "build_provider",
    "load_config_file",
    "parse_config",
]

_TOP_LEVEL = ("providers", "mailboxes")


@dataclass(frozen=True)
class ConfigFile:
    providers: tuple[Provider, ...]
    mailboxes: tuple[Mailbox, ...]


class SecretResolver:
    """Resolves ``env:`` / ``file:`` / ``literal:`` references into Secrets."""

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        base_dir: Path | None = None,
        stdin: Callable[[], str] | None = None,
    ) -> None:
        self._env = os.environ if env is None else env
        self._base = base_dir or Path.cwd()
        self._stdin = stdin

    def __call__(self, field: str, value: str) -> Secret:
        return Secret(self.text(field, value))

    def text(self, field: str, value: str) -> str:
        prefix, sep, rest = value.partition(":")
        if sep and prefix == "env":
            if rest not in self._env:
                raise ConfigError(
                    field,
                    f"environment variable {rest} is not set",
                    f"export {rest}=... before running mailoauth, or give the value another way",
                )
            return self._env[rest]
        if sep and prefix == "file":
            return self._read_file(field, rest)
        if sep and prefix == "literal":
            return rest
        if value == "-" and self._stdin is not None:
            return self._stdin().removesuffix("\n")
        return value

    def _read_file(self, field: str, name: str) -> str:
        path = (self._base / Path(name).expanduser()).resolve()
        try:
            return path.read_text(encoding="utf-8").removesuffix("\n")
        except FileNotFoundError:
            raise ConfigError(field, f"file {path} does not exist", "check the path") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(
                field, f"file {path} cannot be read ({exc.__class__.__name__})", "check it"
            ) from None


def load_config_file(
    path: Path,
    env: Mapping[str, str] | None = None,
    stored_provider: Callable[[str], Provider | None] = lambda _name: None,
) -> ConfigFile:
    """Read and validate a TOML config file; every error names its dotted path.

    ``stored_provider`` finds providers the file does not define (already in the store).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), f"cannot be read ({exc.strerror})", "check the path") from None
    return parse_config(
        text,
        source=str(path),
        resolver=SecretResolver(env, path.parent.resolve()),
        stored_provider=stored_provider,
    )


def parse_config(
    text: str,
    *,
    source: str = "<config>",
    resolver: SecretLoader | None = None,
    stored_provider: Callable[[str], Provider | None] = lambda _name: None,
) -> ConfigFile:
    resolver = resolver or SecretResolver()
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, f"is not valid TOML ({exc})", "fix the syntax") from None
    for key in data:
        if key not in _TOP_LEVEL:
            raise ConfigError(
                key, "unknown top-level key", "use [providers.NAME] and [mailboxes.NAME]"
            )
    provider_tables = _tables(data, "providers")
    providers = tuple(
        build_provider(name, raw, resolver=resolver) for name, raw in provider_tables.items()
    )
    by_name = {p.name: p for p in providers}

    def lookup(name: str) -> Provider | None:
        return by_name.get(name) or stored_provider(name)

    mailboxes = tuple(
        build_mailbox(name, raw, lookup, resolver=resolver)
        for name, raw in _tables(data, "mailboxes").items()
    )
    return ConfigFile(providers, mailboxes)


def _tables(data: Mapping[str, Any], key: str) -> dict[str, Mapping[str, Any]]:
    section = data.get(key, {})
    if not isinstance(section, dict):
        raise ConfigError(key, "must be a table of tables", f"write [{key}.NAME] sections")
    for name, raw in section.items():
        if not isinstance(raw, dict):
            raise ConfigError(f"{key}.{name}", "must be a table", f"write it as [{key}.{name}]")
    return section


def build_provider(name: str, raw: Mapping[str, Any], *, resolver: SecretLoader) -> Provider:
    path = f"providers.{name}"
    certificate = raw.get("certificate")
    if isinstance(certificate, str) and certificate.startswith(("file:", "env:")):
        # Not a secret, but kept beside the key file, so the same references work.
        raw = {**raw, "certificate": resolver(f"{path}.certificate", certificate).reveal()}
    return build(Provider, raw, path=path, secret_loader=resolver, extra={"name": name})


def build_mailbox(
    name: str,
    raw: Mapping[str, Any],
    lookup: Callable[[str], Provider | None],
    *,
    resolver: SecretLoader,
) -> Mailbox:
    path = f"mailboxes.{name}"
    raw = dict(raw)
    provider_name = raw.get("provider")
    if not isinstance(provider_name, str):
        raise ConfigError(f"{path}.provider", "is required", "name the provider this mailbox uses")
    provider = lookup(provider_name)
    if provider is None:
        raise ConfigError(
            f"{path}.provider",
            f"provider {provider_name!r} does not exist",
            "define it under [providers] in this file or with `mailoauth provider add`",
        )
    if "service_account_json" in raw:
        raw.update(_service_account_fields(path, raw.pop("service_account_json"), resolver))
    for direction, default_security in (
        ("outgoing", Security.STARTTLS),
        ("incoming", Security.SSL),
    ):
        if isinstance(table := raw.get(direction), dict):
            raw[direction] = _with_preset_host(provider, direction, table, default_security)
    return build(Mailbox, raw, path=path, secret_loader=resolver, extra={"name": name})


def _with_preset_host(
    provider: Provider, direction: str, table: Mapping[str, Any], default_security: Security
) -> dict[str, Any]:
    """Fill in the preset's host when the table names none."""
    table = dict(table)
    if "host" in table:
        return table
    model = OutgoingSettings if direction == "outgoing" else IncomingSettings
    default_transport = model.__dataclass_fields__["transport"].default
    try:
        transport = Transport(table.get("transport", default_transport))
        security = Security(table.get("security", default_security))
    except ValueError:
        return table  # the model names the bad value
    host = presets.suggested_host(provider.kind, transport, security, provider.cloud)
    if host is not None:
        table["host"] = host
    return table


def _service_account_fields(path: str, ref: object, resolver: SecretLoader) -> dict[str, Any]:
    field = f"{path}.service_account_json"
    if not isinstance(ref, str):
        raise ConfigError(field, "must be text", 'e.g. "file:/etc/mailoauth/sa.json"')
    text = resolver(field, ref).reveal()
    try:
        key = json.loads(text)
    except json.JSONDecodeError:
        raise ConfigError(
            field, "is not JSON", "give the key file downloaded from Google Cloud (Keys → JSON)"
        ) from None
    wanted = ("client_email", "private_key_id", "private_key")
    if (
        not isinstance(key, dict)
        or key.get("type") != "service_account"
        or any(not isinstance(key.get(k), str) for k in wanted)
    ):
        raise ConfigError(
            field,
            "is not a Google service-account key (needs type, client_email, private_key_id, "
            "private_key)",
            "download a JSON key for the service account in Google Cloud",
        )
    return {
        "service_account_email": key["client_email"],
        "service_account_key_id": key["private_key_id"],
        "service_account_key": Secret(key["private_key"]),
    }
