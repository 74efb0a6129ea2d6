"""Console forms ⇄ the tables of a ``mailoauth apply`` file (pure: values in, values out).

A provider or mailbox form becomes the same raw table a TOML file or a REST API body
holds; :mod:`.saving` builds it through the API's :mod:`mailoauth.web.api.bodies` and so
through :func:`mailoauth.configfile.build_provider` / ``build_mailbox``: one validation
path for the file, the CLI, the API and the console. The form adds what HTML needs:

* text → typed values: ports and intervals as numbers, scopes and addresses split on
  spaces, commas or lines, a ticked box as true; an empty box is "not given";
* fields that do not apply to the chosen kind, client authentication, grant or transport
  are left out whatever the browser sent (the page's script only hides them);
* **secrets are write-only**: their boxes are always empty on the page, and an empty box
  keeps the stored secret (as an API body that leaves it out; ``bodies`` drops a kept
  secret the new settings no longer use);
* what the form does not show keeps its stored value: a provider's ``redirect_uri``, a
  mailbox's ``debug`` switch, the fields imported from a service-account key.

:func:`form_errors` turns a refusal (a :class:`~mailoauth.errors.ConfigError`, or the API
body's shape check) into words per form field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import ValidationError

from mailoauth.errors import ConfigError
from mailoauth.models import IncomingSettings, Mailbox, OutgoingSettings, Provider
from mailoauth.providers import (
    ClientAuthMethod,
    GrantType,
    ProviderKind,
    Transport,
)

__all__ = [
    "MAILBOX_SECRETS",
    "PROVIDER_SECRETS",
    "FormErrors",
    "entered",
    "form_errors",
    "mailbox_raw",
    "mailbox_values",
    "provider_raw",
    "provider_values",
]

Form = Mapping[str, str]

#: Write-only fields: never rendered with a value; empty means "keep the stored one".
PROVIDER_SECRETS: Final = ("client_secret", "private_key")
MAILBOX_SECRETS: Final = ("password", "service_account_json")
_PRESET_FIELDS: Final = ("authorization_url", "token_url", "device_url", "revocation_url")
_SOCKETS: Final = (Transport.SMTP.value, Transport.IMAP.value, Transport.POP3.value)
#: Errors on fields the form shows under another name.
_SHOWN_AS: Final = {
    "service_account_email": "service_account_json",
    "service_account_key_id": "service_account_json",
    "service_account_key": "service_account_json",
    "outgoing": "outgoing.transport",
    "incoming": "incoming.transport",
}
_SPLIT: Final = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class FormErrors:
    """Why a form was not saved: the whole message, and the words per form field."""

    message: str
    fields: dict[str, str] = field(default_factory=dict)


def _text(form: Form, name: str) -> str | None:
    value = form.get(name, "").strip()
    return value or None


def _number(form: Form, name: str) -> int | None:
    value = _text(form, name)
    if value is None:
        return None
    if not value.isdigit() or len(value) > 9:
        raise ConfigError(name, f"{value!r} is not a whole number", "write digits only, e.g. 587")
    return int(value)


def _words(form: Form, name: str) -> list[str]:
    return [word for word in _SPLIT.split(form.get(name, "")) if word]


def _given(**values: Any) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value not in (None, "", [])}


def entered(form: Form, secrets: tuple[str, ...]) -> dict[str, str]:
    """What the admin typed, to show the form again: every field but the secrets."""
    return {key: value for key, value in form.items() if key not in secrets and key != "csrf_token"}


# --- providers --------------------------------------------------------------------------


def provider_raw(form: Form, stored: Provider | None) -> dict[str, Any]:
    """The ``[providers.NAME]`` table of the form (secrets only when typed)."""
    kind = form.get("kind", "")
    auth = form.get("client_auth", "")
    raw = _given(
        kind=kind,
        client_id=_text(form, "client_id"),
        description=_text(form, "description"),
        client_auth=auth,
        client_secret=form.get("client_secret") or None,
        client_secret_expires=_text(form, "client_secret_expires"),
    )
    if raw.get("client_id") is None:
        raw["client_id"] = ""  # the model says what to do with an empty client id
    if kind == ProviderKind.MICROSOFT.value:
        raw.update(_given(tenant=_text(form, "tenant"), cloud=_text(form, "cloud")))
    if kind == ProviderKind.GENERIC.value:
        raw.update(_given(**{name: _text(form, name) for name in _PRESET_FIELDS}))
        raw.update(_given(scopes=_words(form, "scopes")))
    if auth == ClientAuthMethod.PRIVATE_KEY_JWT.value:
        raw.update(
            _given(
                private_key=form.get("private_key", "").strip() or None,
                key_id=_text(form, "key_id"),
                certificate=_text(form, "certificate"),
            )
        )
    if stored is not None and stored.redirect_uri is not None:
        raw["redirect_uri"] = stored.redirect_uri
    return raw


def provider_values(provider: Provider) -> dict[str, str]:
    """The form's boxes for a stored provider (no secret, not even its length)."""
    expires = provider.client_secret_expires
    return {
        "name": provider.name,
        "kind": provider.kind.value,
        "description": provider.description,
        "client_id": provider.client_id,
        "client_auth": provider.client_auth.value,
        "client_secret_expires": expires.isoformat() if expires else "",
        "key_id": provider.key_id or "",
        "certificate": provider.certificate or "",
        "tenant": provider.tenant or "",
        "cloud": provider.cloud,
        **{name: getattr(provider, name) or "" for name in _PRESET_FIELDS},
        "scopes": " ".join(provider.scopes),
    }


# --- mailboxes --------------------------------------------------------------------------


def _outgoing(form: Form) -> dict[str, Any] | None:
    transport = form.get("outgoing.transport", "")
    if not transport:
        return None
    table = _given(
        transport=transport,
        host=_text(form, "outgoing.host"),
        port=_number(form, "outgoing.port"),
    )
    if transport in _SOCKETS:
        table.update(
            _given(
                security=_text(form, "outgoing.security"),
                alternate_host=_text(form, "outgoing.alternate_host"),
                alternate_port=_number(form, "outgoing.alternate_port"),
                ehlo_name=_text(form, "outgoing.ehlo_name"),
            )
        )
        if form.get("outgoing.allow_insecure"):
            table["allow_insecure"] = True
    return table


def _incoming(form: Form) -> dict[str, Any] | None:
    transport = form.get("incoming.transport", "")
    if not transport:
        return None
    action = form.get("incoming.after_fetch", "keep") or "keep"
    if action == "move":
        action = f"move:{form.get('incoming.move_to', '').strip()}"
    table = _given(
        transport=transport,
        host=_text(form, "incoming.host"),
        port=_number(form, "incoming.port"),
        folder=_text(form, "incoming.folder"),
        poll_interval=_number(form, "incoming.poll_interval"),
        after_fetch=action,
        deliver=_text(form, "incoming.deliver"),
    )
    if transport in _SOCKETS:
        table.update(_given(security=_text(form, "incoming.security")))
        if form.get("incoming.allow_insecure"):
            table["allow_insecure"] = True
    return table


def mailbox_raw(form: Form, stored: Mailbox | None) -> dict[str, Any]:
    """The ``[mailboxes.NAME]`` table of the form (secrets only when typed)."""
    grant = form.get("grant", "")
    raw = _given(
        provider=form.get("provider", ""),
        login=form.get("login", "").strip(),
        grant=grant,
        description=_text(form, "description"),
        display_name=_text(form, "display_name"),
        reply_to=_text(form, "reply_to"),
        addresses=_words(form, "addresses"),
        scopes=_words(form, "scopes"),
        sasl_mechanism=_text(form, "sasl_mechanism"),
        outgoing=_outgoing(form),
        incoming=_incoming(form),
    )
    raw.setdefault("login", "")  # the model says what to do with an empty login
    if grant == GrantType.PASSWORD.value:
        raw.update(_given(username=_text(form, "username"), password=form.get("password") or None))
    if grant == GrantType.SERVICE_ACCOUNT.value:
        raw.update(_given(subject=_text(form, "subject")))
        key = form.get("service_account_json", "").strip()
        if key:
            raw["service_account_json"] = key
        elif stored is not None and stored.grant is GrantType.SERVICE_ACCOUNT:
            # The stored key stays (bodies keeps the secret); its public half too.
            raw["service_account_email"] = stored.service_account_email
            raw["service_account_key_id"] = stored.service_account_key_id
    if stored is not None and stored.debug:
        raw["debug"] = True
    return raw


def _settings_values(
    prefix: str, settings: OutgoingSettings | IncomingSettings | None
) -> dict[str, str]:
    if settings is None:
        return {f"{prefix}.transport": ""}
    values = {
        f"{prefix}.transport": settings.transport.value,
        f"{prefix}.host": settings.host or "",
        f"{prefix}.port": "" if settings.port is None else str(settings.port),
        f"{prefix}.security": settings.security.value,
        f"{prefix}.allow_insecure": "on" if settings.allow_insecure else "",
    }
    if isinstance(settings, OutgoingSettings):
        values[f"{prefix}.alternate_host"] = settings.alternate_host or ""
        port = settings.alternate_port
        values[f"{prefix}.alternate_port"] = "" if port is None else str(port)
        values[f"{prefix}.ehlo_name"] = settings.ehlo_name or ""
    else:
        verb, _, target = settings.after_fetch.partition(":")
        values[f"{prefix}.folder"] = settings.folder
        values[f"{prefix}.poll_interval"] = str(settings.poll_interval)
        values[f"{prefix}.after_fetch"] = verb
        values[f"{prefix}.move_to"] = target
        values[f"{prefix}.deliver"] = settings.deliver or ""
    return values


def mailbox_values(mailbox: Mailbox) -> dict[str, str]:
    """The form's boxes for a stored mailbox (no secret, not even its length)."""
    return {
        "name": mailbox.name,
        "provider": mailbox.provider,
        "grant": mailbox.grant.value,
        "login": mailbox.login,
        "description": mailbox.description,
        "display_name": mailbox.display_name,
        "reply_to": mailbox.reply_to or "",
        "addresses": "\n".join(mailbox.addresses),
        "scopes": " ".join(mailbox.scopes or ()),
        "sasl_mechanism": mailbox.sasl_mechanism.value,
        "username": mailbox.username or "",
        "subject": mailbox.subject or "",
        **_settings_values("outgoing", mailbox.outgoing),
        **_settings_values("incoming", mailbox.incoming),
    }


# --- errors -----------------------------------------------------------------------------


def _form_field(path: str, prefix: str) -> str:
    name = re.sub(r"\[\d+\]", "", path.removeprefix(prefix))
    return _SHOWN_AS.get(name, name)


def form_errors(error: ConfigError | ValidationError, prefix: str) -> FormErrors:
    """The refusal in words: ``prefix`` (``providers.NAME.``) is cut from field paths."""
    if isinstance(error, ConfigError):
        name = _form_field(error.field, prefix)
        words = f"{error.problem}; {error.fix}" if error.fix else error.problem
        shown = f"{name}: {words}" if name else words
        return FormErrors(shown, {name: words} if name else {})
    fields: dict[str, str] = {}
    for problem in error.errors():
        name = _form_field(".".join(str(part) for part in problem["loc"]), "")
        fields.setdefault(name, str(problem["msg"]))
    message = "; ".join(f"{name}: {words}" for name, words in fields.items())
    return FormErrors(message, fields)
