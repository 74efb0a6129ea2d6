"""Provider presets as data: Google, Microsoft (tenant, national clouds) and generic.

Everything here is a public fact about a provider, written down once and tested as data
(``tests/unit/test_providers.py`` pins the real URLs): endpoints, the scopes each mail
protocol needs, the mail hosts and ports to suggest, and the quirks that decide which
grants can work. No I/O; nothing here reaches the network.

Sources: Google "Using OAuth 2.0 to Access Google APIs" and "OAuth 2.0 Mechanism" (Gmail
IMAP/SMTP), Microsoft identity platform v2.0 endpoints and "Authenticate an IMAP, POP or
SMTP connection using OAuth" (Exchange Online), Microsoft "National cloud deployments".

Microsoft issues an access token for *one resource* at a time. Exchange's SMTP/IMAP/POP
scopes belong to ``outlook.office.com``; Graph scopes to ``graph.microsoft.com``. A
mailbox that mixed the two would need two tokens from one grant, so the model refuses the
mix (``Mailbox`` validation) instead of failing at the provider later.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

__all__ = [
    "API_PATHS",
    "DEFAULT_PORTS",
    "GMAIL_API_HOST",
    "MICROSOFT_CLOUDS",
    "MICROSOFT_SPECIAL_TENANTS",
    "ClientAuthMethod",
    "Direction",
    "Endpoints",
    "GrantType",
    "MicrosoftCloud",
    "ProviderKind",
    "Security",
    "Transport",
    "api_base_url",
    "default_scopes",
    "google_endpoints",
    "microsoft_endpoints",
    "preset_authorize_params",
    "suggested_host",
    "unsupported_grant_reason",
]


class ProviderKind(StrEnum):
    GOOGLE = "google"
    MICROSOFT = "microsoft"
    GENERIC = "generic"


class GrantType(StrEnum):
    """How a mailbox obtains its tokens."""

    AUTHORIZATION_CODE = "authorization_code"
    DEVICE_CODE = "device_code"
    PASSWORD = "password"  # resource-owner password credentials
    CLIENT_CREDENTIALS = "client_credentials"
    SERVICE_ACCOUNT = "service_account"  # RFC 7523 JWT bearer, Google service accounts


class ClientAuthMethod(StrEnum):
    """How the client proves itself at the token endpoint (RFC 6749 §2.3, RFC 7523 §2.2)."""

    CLIENT_SECRET_POST = "client_secret_post"
    CLIENT_SECRET_BASIC = "client_secret_basic"
    PRIVATE_KEY_JWT = "private_key_jwt"
    NONE = "none"


class Transport(StrEnum):
    SMTP = "smtp"
    IMAP = "imap"
    POP3 = "pop3"
    GRAPH = "graph"
    GMAIL_API = "gmail_api"


class Direction(StrEnum):
    OUTGOING = "outgoing"
    INCOMING = "incoming"


class Security(StrEnum):
    """Transport security of a mail connection."""

    STARTTLS = "starttls"
    SSL = "ssl"  # implicit TLS from the first byte
    NONE = "none"


#: Well-known ports by protocol and security mode (RFC 8314, RFC 6409, RFC 3501, RFC 1939).
DEFAULT_PORTS: Final = MappingProxyType(
    {
        Transport.SMTP: {Security.STARTTLS: 587, Security.SSL: 465, Security.NONE: 25},
        Transport.IMAP: {Security.SSL: 993, Security.STARTTLS: 143, Security.NONE: 143},
        Transport.POP3: {Security.SSL: 995, Security.STARTTLS: 110, Security.NONE: 110},
    }
)


@dataclass(frozen=True)
class Endpoints:
    """The OAuth2 endpoints of one authorization server."""

    authorization_url: str | None
    token_url: str
    device_url: str | None = None
    revocation_url: str | None = None


# --- Google -------------------------------------------------------------------------

GOOGLE_MAIL_SCOPE: Final = "https://mail.google.com/"
GOOGLE_GMAIL_SEND_SCOPE: Final = "https://www.googleapis.com/auth/gmail.send"
GOOGLE_GMAIL_MODIFY_SCOPE: Final = "https://www.googleapis.com/auth/gmail.modify"


def google_endpoints() -> Endpoints:
    return Endpoints(
        authorization_url="https://accounts.google.com/o/oauth2/v2/auth",
        token_url="https://oauth2.googleapis.com/token",
        device_url="https://oauth2.googleapis.com/device/code",
        revocation_url="https://oauth2.googleapis.com/revoke",
    )


_GOOGLE_HOSTS: Final = {
    (Transport.SMTP, Security.SSL): "smtp.gmail.com",
    (Transport.SMTP, Security.STARTTLS): "smtp.gmail.com",
    (Transport.IMAP, Security.SSL): "imap.gmail.com",
    (Transport.POP3, Security.SSL): "pop.gmail.com",
}

# --- Microsoft ----------------------------------------------------------------------

MICROSOFT_SPECIAL_TENANTS: Final = frozenset({"common", "organizations", "consumers"})


@dataclass(frozen=True)
class MicrosoftCloud:
    """One Microsoft cloud: where to sign in and which hosts and resources serve mail."""

    name: str
    authority_host: str
    #: Resource of the delegated Exchange scopes (SMTP.Send, IMAP.AccessAsUser.All, ...).
    outlook_resource: str
    #: Resource of the app-only Exchange scope ``<resource>/.default``.
    exchange_app_resource: str
    graph_resource: str
    smtp_host: str
    mailbox_host: str  # IMAP and POP3


MICROSOFT_CLOUDS: Final = MappingProxyType(
    {
        "global": MicrosoftCloud(
            name="global",
            authority_host="login.microsoftonline.com",
            outlook_resource="https://outlook.office.com",
            exchange_app_resource="https://outlook.office365.com",
            graph_resource="https://graph.microsoft.com",
            smtp_host="smtp.office365.com",
            mailbox_host="outlook.office365.com",
        ),
        # US Government GCC High and DoD (GCC "moderate" uses the global cloud).
        "usgov": MicrosoftCloud(
            name="usgov",
            authority_host="login.microsoftonline.us",
            outlook_resource="https://outlook.office365.us",
            exchange_app_resource="https://outlook.office365.us",
            graph_resource="https://graph.microsoft.us",
            smtp_host="smtp.office365.us",
            mailbox_host="outlook.office365.us",
        ),
        # Microsoft 365 operated by 21Vianet.
        "china": MicrosoftCloud(
            name="china",
            authority_host="login.chinacloudapi.cn",
            outlook_resource="https://partner.outlook.cn",
            exchange_app_resource="https://partner.outlook.cn",
            graph_resource="https://microsoftgraph.chinacloudapi.cn",
            smtp_host="smtp.partner.outlook.cn",
            mailbox_host="partner.outlook.cn",
        ),
    }
)


def microsoft_endpoints(tenant: str, cloud: str = "global") -> Endpoints:
    base = f"https://{MICROSOFT_CLOUDS[cloud].authority_host}/{tenant}/oauth2/v2.0"
    # Entra ID has no RFC 7009 revocation endpoint: sign-out is done at the directory.
    return Endpoints(
        authorization_url=f"{base}/authorize",
        token_url=f"{base}/token",
        device_url=f"{base}/devicecode",
        revocation_url=None,
    )


_MICROSOFT_DELEGATED: Final = {
    Transport.SMTP: "SMTP.Send",
    Transport.IMAP: "IMAP.AccessAsUser.All",
    Transport.POP3: "POP.AccessAsUser.All",
}
_GRAPH_DELEGATED: Final = {Direction.OUTGOING: "Mail.Send", Direction.INCOMING: "Mail.ReadWrite"}


# --- what works where ---------------------------------------------------------------

_UNSUPPORTED: Final = {
    (ProviderKind.GOOGLE, GrantType.PASSWORD): (
        "Google does not offer the resource-owner password grant; use authorization_code "
        "(interactive) or service_account (Workspace domain-wide delegation)"
    ),
    (ProviderKind.GOOGLE, GrantType.CLIENT_CREDENTIALS): (
        "Google has no client-credentials grant for mail; use service_account "
        "(a service account with domain-wide delegation)"
    ),
    (ProviderKind.GOOGLE, GrantType.DEVICE_CODE): (
        "Google's device flow does not grant mail scopes; use authorization_code "
        "(`mailoauth authorize` with the loopback listener or --paste)"
    ),
    (ProviderKind.MICROSOFT, GrantType.SERVICE_ACCOUNT): (
        "service accounts are a Google feature; for app-only Microsoft access use "
        "client_credentials"
    ),
}


def unsupported_grant_reason(kind: ProviderKind, grant: GrantType) -> str | None:
    """Why ``grant`` cannot work with a provider of ``kind``, or None when it can."""
    return _UNSUPPORTED.get((kind, grant))


def preset_authorize_params(kind: ProviderKind) -> dict[str, str]:
    """Extra authorization-request parameters a preset needs to get a refresh token."""
    if kind is ProviderKind.GOOGLE:
        return {"access_type": "offline", "prompt": "consent"}
    return {}


def default_scopes(
    kind: ProviderKind,
    grant: GrantType,
    transports: dict[Direction, Transport],
    cloud: str = "global",
) -> tuple[str, ...]:
    """The scopes a mailbox needs for the transports it uses, in a stable order.

    ``transports`` maps each direction in use to its transport. A mailbox with neither
    direction configured is used for its token alone (``mailoauth token`` behind msmtp or
    mbsync), so it gets the scopes of SMTP and IMAP. Generic providers have no preset
    scopes: their scopes come from the provider or mailbox configuration.
    """
    if not transports:
        transports = {Direction.OUTGOING: Transport.SMTP, Direction.INCOMING: Transport.IMAP}
    if kind is ProviderKind.GOOGLE:
        return _google_scopes(transports)
    if kind is ProviderKind.MICROSOFT:
        return _microsoft_scopes(grant, transports, MICROSOFT_CLOUDS[cloud])
    return ()


def _google_scopes(transports: dict[Direction, Transport]) -> tuple[str, ...]:
    scopes: list[str] = []
    for direction, transport in transports.items():
        if transport is Transport.GMAIL_API:
            scope = (
                GOOGLE_GMAIL_SEND_SCOPE
                if direction is Direction.OUTGOING
                else GOOGLE_GMAIL_MODIFY_SCOPE
            )
        else:
            scope = GOOGLE_MAIL_SCOPE
        if scope not in scopes:
            scopes.append(scope)
    if GOOGLE_MAIL_SCOPE in scopes:  # the full mail scope covers the Gmail API too
        return (GOOGLE_MAIL_SCOPE,)
    return tuple(scopes)


def _microsoft_scopes(
    grant: GrantType, transports: dict[Direction, Transport], cloud: MicrosoftCloud
) -> tuple[str, ...]:
    uses_graph = Transport.GRAPH in transports.values()
    if grant is GrantType.CLIENT_CREDENTIALS:
        # App-only: the application permissions an admin granted, all behind .default.
        resource = cloud.graph_resource if uses_graph else cloud.exchange_app_resource
        return (f"{resource}/.default",)
    scopes: list[str] = []
    for direction, transport in transports.items():
        if transport is Transport.GRAPH:
            scope = f"{cloud.graph_resource}/{_GRAPH_DELEGATED[direction]}"
        elif transport in _MICROSOFT_DELEGATED:
            scope = f"{cloud.outlook_resource}/{_MICROSOFT_DELEGATED[transport]}"
        else:
            continue  # gmail_api with Microsoft is refused by the model
        if scope not in scopes:
            scopes.append(scope)
    scopes.append("offline_access")
    return tuple(scopes)


def suggested_host(
    kind: ProviderKind, transport: Transport, security: Security, cloud: str = "global"
) -> str | None:
    """The mail host a preset suggests for ``transport``, or None (generic: ask the user)."""
    if kind is ProviderKind.GOOGLE:
        return _GOOGLE_HOSTS.get((transport, security))
    if kind is ProviderKind.MICROSOFT:
        ms = MICROSOFT_CLOUDS[cloud]
        if transport is Transport.SMTP and security is Security.STARTTLS:
            return ms.smtp_host  # Exchange Online offers SMTP AUTH on 587 only
        if transport in (Transport.IMAP, Transport.POP3) and security is Security.SSL:
            return ms.mailbox_host
    return None


#: Where each HTTPS mail API lives below its host.
API_PATHS: Final = MappingProxyType({Transport.GRAPH: "/v1.0", Transport.GMAIL_API: ""})
GMAIL_API_HOST: Final = "gmail.googleapis.com"


def api_base_url(
    kind: ProviderKind,
    transport: Transport,
    cloud: str = "global",
    host: str | None = None,
    port: int | None = None,
) -> str | None:
    """The base URL of a mail API (Graph ``…/v1.0``, Gmail ``https://gmail.googleapis.com``):
    ``host``/``port`` when the mailbox overrides them, else the preset's; None when a
    generic provider names no host."""
    if transport not in API_PATHS:
        return None
    if host is None:
        if transport is Transport.GRAPH and kind is ProviderKind.MICROSOFT:
            host = MICROSOFT_CLOUDS[cloud].graph_resource.removeprefix("https://")
        elif transport is Transport.GMAIL_API and kind is ProviderKind.GOOGLE:
            host = GMAIL_API_HOST
        else:
            return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != 443:
        netloc = f"{netloc}:{port}"
    return f"https://{netloc}{API_PATHS[transport]}"
