"""``Mailbox`` and its ``OutgoingSettings`` / ``IncomingSettings``: one mail account."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from mailoauth.errors import ConfigError
from mailoauth.models._fields import check_scopes, forbid, set_field
from mailoauth.providers import (
    DEFAULT_PORTS,
    Direction,
    GrantType,
    Security,
    Transport,
)
from mailoauth.secret import Secret
from mailoauth.validate import (
    check_address,
    check_delivery_target,
    check_host,
    check_identity,
    check_name,
    check_port,
    check_private_key,
    has_control,
    is_loopback_host,
)


class SaslMechanism(StrEnum):
    AUTO = "auto"  # OAUTHBEARER where offered and supported, else XOAUTH2
    XOAUTH2 = "xoauth2"
    OAUTHBEARER = "oauthbearer"


# --- Mailbox ------------------------------------------------------------------------

_OUTGOING: Final = (Transport.SMTP, Transport.GRAPH, Transport.GMAIL_API)
_INCOMING: Final = (Transport.IMAP, Transport.POP3, Transport.GRAPH, Transport.GMAIL_API)
SOCKET_TRANSPORTS: Final = (Transport.SMTP, Transport.IMAP, Transport.POP3)


def _check_server(
    transport: Transport,
    host: str | None,
    port: int | None,
    security: Security,
    allow_insecure: bool,
) -> int | None:
    """Validate host/port/security for a socket transport; return the port to use."""
    if transport not in SOCKET_TRANSPORTS:
        # An HTTPS API: host/port override the preset's API host (a national cloud, a
        # proxy, a test double); always HTTPS, so security does not apply.
        if host is not None:
            check_host("host", host)
        return None if port is None else check_port("port", port)
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
    ehlo_name: str | None = None  # SMTP: the name we greet with (default: this host's FQDN)

    def __post_init__(self) -> None:
        set_field(self, "transport", Transport(self.transport))
        set_field(self, "security", Security(self.security))
        if self.ehlo_name is not None:
            if self.transport is not Transport.SMTP:
                raise ConfigError("ehlo_name", "is only used with smtp", "remove it")
            check_host("ehlo_name", self.ehlo_name)
        if self.transport not in _OUTGOING:
            raise ConfigError(
                "transport",
                f"{self.transport.value!r} cannot send",
                "use smtp, graph or gmail_api",
            )
        port = _check_server(
            self.transport, self.host, self.port, self.security, self.allow_insecure
        )
        set_field(self, "port", port)
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
        set_field(
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
    deliver: str | None = None  # maildir:/path | webhook:https://... (None: fetch is manual)
    allow_insecure: bool = False

    def __post_init__(self) -> None:
        set_field(self, "transport", Transport(self.transport))
        set_field(self, "security", Security(self.security))
        if self.transport not in _INCOMING:
            raise ConfigError(
                "transport",
                f"{self.transport.value!r} cannot fetch",
                "use imap, pop3, graph or gmail_api",
            )
        port = _check_server(
            self.transport, self.host, self.port, self.security, self.allow_insecure
        )
        set_field(self, "port", port)
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
        if self.deliver is not None:
            check_delivery_target("deliver", self.deliver)

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
        set_field(self, "grant", GrantType(self.grant))
        set_field(self, "sasl_mechanism", SaslMechanism(self.sasl_mechanism))
        addresses = tuple(self.addresses)
        if not addresses and "@" in self.login:
            addresses = (self.login,)
        for i, address in enumerate(addresses):
            check_address(f"addresses[{i}]", address)
        set_field(self, "addresses", addresses)
        if self.reply_to is not None:
            check_address("reply_to", self.reply_to)
        if has_control(self.display_name):
            raise ConfigError("display_name", "contains control characters", "remove them")
        if self.scopes is not None:
            set_field(self, "scopes", check_scopes(tuple(self.scopes), allow_empty=False))
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
                set_field(self, "username", self.login)
            if self.password is None or not self.password.reveal():
                raise ConfigError(
                    "password",
                    "is required for grant = 'password'",
                    'set it, e.g. password = "env:MAILBOX_PASSWORD"',
                )
        else:
            forbid(
                self,
                password_fields,
                "is only used with grant = 'password'",
                "remove it or set grant = 'password'",
            )
        if grant is GrantType.SERVICE_ACCOUNT:
            if self.subject is None:
                set_field(self, "subject", self.login)
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
            forbid(
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
