"""The configuration model: frozen, typed values that are valid by construction.

``Provider`` is an app registration at an identity provider, ``Mailbox`` one mail account
used through a provider, ``Grant`` the token set a mailbox holds and its status. Building
one validates it: every bad value raises :class:`~mailoauth.errors.ConfigError` with the
field's name and the fix. Checks that need two objects (a mailbox and its provider) live in
:func:`check_mailbox_with_provider`.

Secrets are :class:`~mailoauth.secret.Secret` fields; :mod:`mailoauth.records` splits a
model into its public part and its secrets so the store can encrypt the latter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Final

from cryptography.hazmat.primitives.serialization import Encoding

from mailoauth import providers as presets
from mailoauth.errors import ConfigError
from mailoauth.providers import (
    DEFAULT_PORTS,
    MICROSOFT_CLOUDS,
    MICROSOFT_SPECIAL_TENANTS,
    ClientAuthMethod,
    Direction,
    Endpoints,
    GrantType,
    ProviderKind,
    Security,
    Transport,
)
from mailoauth.secret import Secret
from mailoauth.validate import (
    check_address,
    check_certificate,
    check_host,
    check_identity,
    check_name,
    check_port,
    check_private_key,
    check_redirect_uri,
    check_url,
    is_loopback_host,
)

__all__ = [
    "Grant",
    "GrantStatus",
    "IncomingSettings",
    "Mailbox",
    "OutgoingSettings",
    "Provider",
    "SaslMechanism",
    "check_mailbox_with_provider",
    "mailbox_scopes",
]

_TENANT_ID: Final = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_PRESET_URL_FIELDS: Final = ("authorization_url", "token_url", "device_url", "revocation_url")


class SaslMechanism(StrEnum):
    AUTO = "auto"  # OAUTHBEARER where offered and supported, else XOAUTH2
    XOAUTH2 = "xoauth2"
    OAUTHBEARER = "oauthbearer"


class GrantStatus(StrEnum):
    CONNECTED = "connected"
    NEEDS_AUTHORIZATION = "needs_authorization"
    ERROR = "error"  # a transient failure; the token service keeps retrying


def _set(obj: object, name: str, value: object) -> None:
    """Normalise a field of a frozen dataclass during ``__post_init__``."""
    object.__setattr__(obj, name, value)


def _forbid(obj: object, names: tuple[str, ...], why: str, fix: str) -> None:
    for name in names:
        if getattr(obj, name) not in (None, (), ""):
            raise ConfigError(name, why, fix)


# --- Provider -----------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Provider:
    """An app registration at Google, Microsoft or a generic OAuth2 server."""

    name: str
    kind: ProviderKind
    client_id: str
    description: str = ""
    client_auth: ClientAuthMethod = ClientAuthMethod.CLIENT_SECRET_POST
    client_secret: Secret | None = None
    client_secret_expires: date | None = None
    private_key: Secret | None = None
    key_id: str | None = None
    certificate: str | None = None
    tenant: str | None = None
    cloud: str = "global"
    authorization_url: str | None = None
    token_url: str | None = None
    device_url: str | None = None
    revocation_url: str | None = None
    scopes: tuple[str, ...] = ()
    redirect_uri: str | None = None

    def __post_init__(self) -> None:
        check_name("name", self.name)
        _set(self, "kind", ProviderKind(self.kind))
        _set(self, "client_auth", ClientAuthMethod(self.client_auth))
        if not self.client_id.strip():
            raise ConfigError("client_id", "is empty", "copy the app's client id from the console")
        _set(self, "scopes", _check_scopes(tuple(self.scopes), allow_empty=True))
        self._check_kind()
        self._check_client_auth()
        if self.redirect_uri is not None:
            check_redirect_uri("redirect_uri", self.redirect_uri)

    def _check_kind(self) -> None:
        kind = self.kind
        if kind is ProviderKind.GENERIC:
            if self.token_url is None:
                raise ConfigError(
                    "token_url", "is required for generic providers", "set the token endpoint"
                )
            for name in _PRESET_URL_FIELDS:
                if (url := getattr(self, name)) is not None:
                    check_url(name, url)
            _forbid(self, ("tenant",), "only Microsoft providers have a tenant", "remove it")
            if self.cloud != "global":
                raise ConfigError("cloud", "only Microsoft providers have a cloud", "remove it")
            return
        _forbid(
            self,
            (*_PRESET_URL_FIELDS, "scopes"),
            f"is set by the {kind.value} preset and cannot be changed",
            'remove it, or use kind = "generic" to give every URL and scope yourself',
        )
        if kind is ProviderKind.GOOGLE:
            _forbid(self, ("tenant",), "only Microsoft providers have a tenant", "remove it")
            if self.cloud != "global":
                raise ConfigError("cloud", "only Microsoft providers have a cloud", "remove it")
            return
        if not self.tenant:
            raise ConfigError(
                "tenant",
                "is required for Microsoft providers",
                "set your directory (tenant) id, a verified domain, or common / organizations "
                "/ consumers",
            )
        _check_tenant(self.tenant)
        if self.cloud not in MICROSOFT_CLOUDS:
            raise ConfigError(
                "cloud", f"{self.cloud!r} is unknown", f"use one of {', '.join(MICROSOFT_CLOUDS)}"
            )

    def _check_client_auth(self) -> None:
        method = self.client_auth
        if method is ClientAuthMethod.PRIVATE_KEY_JWT:
            if self.kind is ProviderKind.GOOGLE:
                raise ConfigError(
                    "client_auth",
                    "Google OAuth clients authenticate with a client secret, not a key",
                    "use client_secret_post; for key-based access use a service account "
                    "(mailbox grant = 'service_account')",
                )
            if self.private_key is None:
                raise ConfigError(
                    "private_key", "is required for private_key_jwt", "give the PEM private key"
                )
            key = check_private_key("private_key", self.private_key.reveal())
            if self.certificate is not None:
                cert = check_certificate("certificate", self.certificate)
                # Canonical PEM, so whitespace or line endings never count as a change.
                _set(self, "certificate", cert.public_bytes(Encoding.PEM).decode())
                if cert.public_key() != key:
                    raise ConfigError(
                        "certificate",
                        "does not belong to private_key",
                        "give the certificate made from this key",
                    )
            elif self.kind is ProviderKind.MICROSOFT:
                raise ConfigError(
                    "certificate",
                    "is required for Microsoft private_key_jwt (it names the key by thumbprint)",
                    "give the certificate uploaded under Certificates & secrets",
                )
            _forbid(self, ("client_secret",), "is not used with private_key_jwt", "remove it")
            return
        _forbid(
            self,
            ("private_key", "key_id", "certificate"),
            f"is only used with client_auth = 'private_key_jwt', not {method.value!r}",
            "remove it or set client_auth = 'private_key_jwt'",
        )
        if method is ClientAuthMethod.NONE:
            _forbid(
                self,
                ("client_secret",),
                "is not sent with client_auth = 'none'",
                "remove it, or choose client_secret_post / client_secret_basic",
            )
        elif self.client_secret is None or not self.client_secret.reveal():
            raise ConfigError(
                "client_secret",
                f"is required for {method.value}",
                'set it (e.g. client_secret = "env:CLIENT_SECRET"), or use client_auth = '
                "'none' for a public client",
            )

    def endpoints(self) -> Endpoints:
        if self.kind is ProviderKind.GOOGLE:
            return presets.google_endpoints()
        if self.kind is ProviderKind.MICROSOFT:
            assert self.tenant is not None  # checked in __post_init__
            return presets.microsoft_endpoints(self.tenant, self.cloud)
        assert self.token_url is not None
        return Endpoints(
            authorization_url=self.authorization_url,
            token_url=self.token_url,
            device_url=self.device_url,
            revocation_url=self.revocation_url,
        )

    def effective_redirect_uri(self, base_url: str) -> str:
        """The configured redirect URI, or the service's callback under ``base_url``."""
        return self.redirect_uri or f"{base_url.rstrip('/')}/oauth/callback"


def _check_tenant(tenant: str) -> None:
    import re

    if tenant in MICROSOFT_SPECIAL_TENANTS or re.fullmatch(_TENANT_ID, tenant):
        return
    if re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", tenant):
        return  # a verified domain, e.g. contoso.onmicrosoft.com
    raise ConfigError(
        "tenant",
        f"{tenant!r} is not a tenant",
        "use the directory id (a GUID), a verified domain, or common / organizations / consumers",
    )


# --- Mailbox ------------------------------------------------------------------------

_OUTGOING: Final = (Transport.SMTP, Transport.GRAPH, Transport.GMAIL_API)
_INCOMING: Final = (Transport.IMAP, Transport.POP3, Transport.GRAPH, Transport.GMAIL_API)
_SOCKET_TRANSPORTS: Final = (Transport.SMTP, Transport.IMAP, Transport.POP3)


def _check_server(
    transport: Transport,
    host: str | None,
    port: int | None,
    security: Security,
    allow_insecure: bool,
) -> int | None:
    """Validate host/port/security for a socket transport; return the port to use."""
    if transport not in _SOCKET_TRANSPORTS:
        for name, value in (("host", host), ("port", port)):
            if value is not None:
                raise ConfigError(name, f"is not used by {transport.value}", "remove it")
        return None
    if host is None:
        raise ConfigError("host", f"is required for {transport.value}", "set the server name")
    check_host("host", host)
    if security not in DEFAULT_PORTS[transport]:
        raise ConfigError(
            "security",
            f"{security.value!r} is not offered for {transport.value}",
            "use ssl or starttls",
        )
    if security is Security.NONE and not allow_insecure and not is_loopback_host(host):
        raise ConfigError(
            "security",
            f"'none' would send the access token to {host} in clear text",
            "use starttls or ssl, or set allow_insecure = true on a network you trust",
        )
    return DEFAULT_PORTS[transport][security] if port is None else check_port("port", port)


@dataclass(frozen=True, kw_only=True)
class OutgoingSettings:
    """How a mailbox sends: SMTP submission, Microsoft Graph or the Gmail API."""

    transport: Transport = Transport.SMTP
    host: str | None = None
    port: int | None = None
    security: Security = Security.STARTTLS
    alternate_host: str | None = None
    alternate_port: int | None = None
    allow_insecure: bool = False

    def __post_init__(self) -> None:
        _set(self, "transport", Transport(self.transport))
        _set(self, "security", Security(self.security))
        if self.transport not in _OUTGOING:
            raise ConfigError(
                "transport",
                f"{self.transport.value!r} cannot send",
                "use smtp, graph or gmail_api",
            )
        port = _check_server(
            self.transport, self.host, self.port, self.security, self.allow_insecure
        )
        _set(self, "port", port)
        if self.alternate_host is None:
            if self.alternate_port is not None:
                raise ConfigError("alternate_port", "is set without alternate_host", "set both")
            return
        if self.transport is not Transport.SMTP:
            raise ConfigError("alternate_host", "is only used with smtp", "remove it")
        check_host("alternate_host", self.alternate_host)
        if (
            self.security is Security.NONE
            and not self.allow_insecure
            and not is_loopback_host(self.alternate_host)
        ):
            raise ConfigError(
                "alternate_host",
                f"security 'none' would send the access token to {self.alternate_host} in "
                "clear text",
                "use starttls or ssl, or set allow_insecure = true on a network you trust",
            )
        _set(
            self,
            "alternate_port",
            port
            if self.alternate_port is None
            else check_port("alternate_port", self.alternate_port),
        )


@dataclass(frozen=True, kw_only=True)
class IncomingSettings:
    """How a mailbox fetches: IMAP, POP3, Microsoft Graph or the Gmail API."""

    transport: Transport = Transport.IMAP
    host: str | None = None
    port: int | None = None
    security: Security = Security.SSL
    folder: str = "INBOX"
    poll_interval: int = 5  # minutes
    after_fetch: str = "keep"  # keep | seen | delete | move:FOLDER
    allow_insecure: bool = False

    def __post_init__(self) -> None:
        _set(self, "transport", Transport(self.transport))
        _set(self, "security", Security(self.security))
        if self.transport not in _INCOMING:
            raise ConfigError(
                "transport",
                f"{self.transport.value!r} cannot fetch",
                "use imap, pop3, graph or gmail_api",
            )
        port = _check_server(
            self.transport, self.host, self.port, self.security, self.allow_insecure
        )
        _set(self, "port", port)
        if (
            isinstance(self.poll_interval, bool)
            or not isinstance(self.poll_interval, int)
            or not 1 <= self.poll_interval <= 1440
        ):
            raise ConfigError(
                "poll_interval",
                f"{self.poll_interval!r} is out of range",
                "give whole minutes from 1 to 1440",
            )
        if not self.folder.strip() or "\r" in self.folder or "\n" in self.folder:
            raise ConfigError("folder", f"{self.folder!r} is not a folder name", "e.g. INBOX")
        self._check_after_fetch()

    def _check_after_fetch(self) -> None:
        action = self.after_fetch
        verb, _, target = action.partition(":")
        if verb not in ("keep", "seen", "delete", "move") or (verb == "move") != bool(target):
            raise ConfigError(
                "after_fetch",
                f"{action!r} is not an action",
                "use keep, seen, delete or move:FOLDER",
            )
        if self.transport is Transport.POP3:
            if verb in ("seen", "move"):
                raise ConfigError(
                    "after_fetch",
                    f"POP3 has no flags or folders, so {action!r} cannot be done",
                    "use keep or delete, or fetch over IMAP",
                )
            if self.folder != "INBOX":
                raise ConfigError(
                    "folder", "POP3 reads only the inbox", "remove folder or fetch over IMAP"
                )


@dataclass(frozen=True, kw_only=True)
class Mailbox:
    """One mail account used through a provider."""

    name: str
    provider: str
    login: str
    grant: GrantType = GrantType.AUTHORIZATION_CODE
    description: str = ""
    addresses: tuple[str, ...] = ()
    display_name: str = ""
    reply_to: str | None = None
    outgoing: OutgoingSettings | None = None
    incoming: IncomingSettings | None = None
    scopes: tuple[str, ...] | None = None
    sasl_mechanism: SaslMechanism = SaslMechanism.AUTO
    debug: bool = False
    # grant = "password" (resource-owner password credentials)
    username: str | None = None
    password: Secret | None = None
    # grant = "service_account" (RFC 7523 JWT bearer, Google domain-wide delegation)
    service_account_email: str | None = None
    service_account_key_id: str | None = None
    service_account_key: Secret | None = None
    subject: str | None = None

    def __post_init__(self) -> None:
        check_name("name", self.name)
        check_name("provider", self.provider)
        check_identity("login", self.login)
        _set(self, "grant", GrantType(self.grant))
        _set(self, "sasl_mechanism", SaslMechanism(self.sasl_mechanism))
        addresses = tuple(self.addresses)
        if not addresses and "@" in self.login:
            addresses = (self.login,)
        for i, address in enumerate(addresses):
            check_address(f"addresses[{i}]", address)
        _set(self, "addresses", addresses)
        if self.reply_to is not None:
            check_address("reply_to", self.reply_to)
        if _has_control(self.display_name):
            raise ConfigError("display_name", "contains control characters", "remove them")
        if self.scopes is not None:
            _set(self, "scopes", _check_scopes(tuple(self.scopes), allow_empty=False))
        self._check_grant_fields()

    def _check_grant_fields(self) -> None:
        grant = self.grant
        password_fields = ("username", "password")
        account_fields = (
            "service_account_email",
            "service_account_key_id",
            "service_account_key",
            "subject",
        )
        if grant is GrantType.PASSWORD:
            if self.username is None:
                _set(self, "username", self.login)
            if self.password is None or not self.password.reveal():
                raise ConfigError(
                    "password",
                    "is required for grant = 'password'",
                    'set it, e.g. password = "env:MAILBOX_PASSWORD"',
                )
        else:
            _forbid(
                self,
                password_fields,
                "is only used with grant = 'password'",
                "remove it or set grant = 'password'",
            )
        if grant is GrantType.SERVICE_ACCOUNT:
            if self.subject is None:
                _set(self, "subject", self.login)
            for name in ("service_account_email", "service_account_key"):
                if getattr(self, name) is None:
                    raise ConfigError(
                        name,
                        "is required for grant = 'service_account'",
                        'import the JSON key: service_account_json = "file:/path/key.json"',
                    )
            assert self.service_account_key is not None
            check_private_key("service_account_key", self.service_account_key.reveal())
            assert self.subject is not None
            check_address("subject", self.subject)
        else:
            _forbid(
                self,
                account_fields,
                "is only used with grant = 'service_account'",
                "remove it or set grant = 'service_account'",
            )

    def transports(self) -> dict[Direction, Transport]:
        found: dict[Direction, Transport] = {}
        if self.outgoing is not None:
            found[Direction.OUTGOING] = self.outgoing.transport
        if self.incoming is not None:
            found[Direction.INCOMING] = self.incoming.transport
        return found

    def with_changes(self, **changes: object) -> Mailbox:
        return replace(self, **changes)  # type: ignore[arg-type]


def _check_scopes(scopes: tuple[str, ...], *, allow_empty: bool) -> tuple[str, ...]:
    if not scopes and not allow_empty:
        raise ConfigError("scopes", "is empty", "list at least one scope, or remove the key")
    for i, scope in enumerate(scopes):
        if not scope or any(c.isspace() or ord(c) < 32 for c in scope):
            raise ConfigError(
                f"scopes[{i}]",
                f"{scope!r} is not a scope",
                'give one scope per list item, e.g. ["email", "offline_access"]',
            )
    return scopes


def _has_control(text: str) -> bool:
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def mailbox_scopes(mailbox: Mailbox, provider: Provider) -> tuple[str, ...]:
    """The scopes to request: the mailbox's override, else the preset's, else the provider's."""
    if mailbox.scopes is not None:
        return mailbox.scopes
    derived = presets.default_scopes(
        provider.kind, mailbox.grant, mailbox.transports(), provider.cloud
    )
    return derived or provider.scopes


def check_mailbox_with_provider(mailbox: Mailbox, provider: Provider) -> None:
    """The checks that need both objects; raises ConfigError on the mailbox's fields."""
    kind = provider.kind
    if (reason := presets.unsupported_grant_reason(kind, mailbox.grant)) is not None:
        raise ConfigError("grant", f"{mailbox.grant.value!r} does not work here", reason)
    endpoints = provider.endpoints()
    grant = mailbox.grant
    if grant is GrantType.AUTHORIZATION_CODE and endpoints.authorization_url is None:
        raise ConfigError(
            "grant",
            f"authorization_code needs provider {provider.name!r} to have authorization_url",
            "set it on the provider",
        )
    if grant is GrantType.DEVICE_CODE and endpoints.device_url is None:
        raise ConfigError(
            "grant",
            f"device_code needs provider {provider.name!r} to have device_url",
            "set it on the provider",
        )
    if grant is GrantType.CLIENT_CREDENTIALS:
        if provider.client_auth is ClientAuthMethod.NONE:
            raise ConfigError(
                "grant",
                "client_credentials needs a confidential client",
                f"give provider {provider.name!r} a client secret or a private key",
            )
        if kind is ProviderKind.MICROSOFT and provider.tenant in MICROSOFT_SPECIAL_TENANTS:
            raise ConfigError(
                "grant",
                f"client_credentials cannot use tenant {provider.tenant!r}",
                f"set provider {provider.name!r} tenant to your directory id or domain",
            )
    if grant is GrantType.PASSWORD and provider.tenant == "consumers":
        raise ConfigError(
            "grant",
            "Microsoft personal accounts do not allow the password grant",
            "use authorization_code or device_code",
        )
    _check_transports(mailbox, provider)


def _check_transports(mailbox: Mailbox, provider: Provider) -> None:
    transports = mailbox.transports()
    for direction, transport in transports.items():
        if transport is Transport.GRAPH and provider.kind is not ProviderKind.MICROSOFT:
            raise ConfigError(
                f"{direction.value}.transport",
                "graph needs a Microsoft provider",
                "use smtp/imap/pop3, or a provider of kind microsoft",
            )
        if transport is Transport.GMAIL_API and provider.kind is not ProviderKind.GOOGLE:
            raise ConfigError(
                f"{direction.value}.transport",
                "gmail_api needs a Google provider",
                "use smtp/imap/pop3, or a provider of kind google",
            )
    values = set(transports.values())
    if (
        provider.kind is ProviderKind.MICROSOFT
        and Transport.GRAPH in values
        and values & set(_SOCKET_TRANSPORTS)
    ):
        raise ConfigError(
            "incoming.transport",
            "Microsoft issues a token for one resource at a time, so Graph cannot be mixed "
            "with SMTP/IMAP/POP3 in one mailbox",
            "use graph for both directions, or SMTP/IMAP/POP3 for both",
        )


# --- Grant --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Grant:
    """The tokens a mailbox holds and what the token service last learned about them.

    Only the two tokens are secret (sealed by the store). ``last_error`` is stored and shown
    as it is: whoever sets it must pass the provider's error text through redaction first.
    """

    mailbox: str
    status: GrantStatus = GrantStatus.CONNECTED
    access_token: Secret | None = None
    expires_at: datetime | None = None
    refresh_token: Secret | None = None
    token_type: str = "Bearer"
    scopes: tuple[str, ...] = ()
    authorized_as: str | None = None
    authorized_at: datetime | None = None
    refreshed_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None

    def __post_init__(self) -> None:
        check_name("mailbox", self.mailbox)
        _set(self, "status", GrantStatus(self.status))
        _set(self, "scopes", tuple(self.scopes))
        for name in ("expires_at", "authorized_at", "refreshed_at", "last_error_at"):
            value = getattr(self, name)
            if value is not None and value.utcoffset() is None:
                raise ConfigError(name, "must carry a time zone", "use datetime.now(UTC)")
