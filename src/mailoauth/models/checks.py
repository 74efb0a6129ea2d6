"""Rules that need a mailbox and its provider together, and the scopes they imply."""

from __future__ import annotations

from mailoauth import providers as presets
from mailoauth.errors import ConfigError
from mailoauth.models.mailbox import SOCKET_TRANSPORTS, Mailbox
from mailoauth.models.provider import Provider
from mailoauth.providers import (
    MICROSOFT_SPECIAL_TENANTS,
    ClientAuthMethod,
    GrantType,
    ProviderKind,
    Transport,
)


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
        and values & set(SOCKET_TRANSPORTS)
    ):
        raise ConfigError(
            "incoming.transport",
            "Microsoft issues a token for one resource at a time, so Graph cannot be mixed "
            "with SMTP/IMAP/POP3 in one mailbox",
            "use graph for both directions, or SMTP/IMAP/POP3 for both",
        )
