"""``Provider``: an app registration at Google, Microsoft or a generic OAuth2 server."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

from cryptography.hazmat.primitives.serialization import Encoding

from mailoauth import providers as presets
from mailoauth.errors import ConfigError
from mailoauth.models._fields import check_scopes, forbid, set_field
from mailoauth.providers import (
    MICROSOFT_CLOUDS,
    MICROSOFT_SPECIAL_TENANTS,
    ClientAuthMethod,
    Endpoints,
    ProviderKind,
)
from mailoauth.secret import Secret
from mailoauth.validate import (
    check_certificate,
    check_name,
    check_private_key,
    check_redirect_uri,
    check_url,
)

_TENANT_ID: Final = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_PRESET_URL_FIELDS: Final = ("authorization_url", "token_url", "device_url", "revocation_url")


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
        set_field(self, "kind", ProviderKind(self.kind))
        set_field(self, "client_auth", ClientAuthMethod(self.client_auth))
        if not self.client_id.strip():
            raise ConfigError("client_id", "is empty", "copy the app's client id from the console")
        set_field(self, "scopes", check_scopes(tuple(self.scopes), allow_empty=True))
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
            forbid(self, ("tenant",), "only Microsoft providers have a tenant", "remove it")
            if self.cloud != "global":
                raise ConfigError("cloud", "only Microsoft providers have a cloud", "remove it")
            return
        forbid(
            self,
            (*_PRESET_URL_FIELDS, "scopes"),
            f"is set by the {kind.value} preset and cannot be changed",
            'remove it, or use kind = "generic" to give every URL and scope yourself',
        )
        if kind is ProviderKind.GOOGLE:
            forbid(self, ("tenant",), "only Microsoft providers have a tenant", "remove it")
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
                set_field(self, "certificate", cert.public_bytes(Encoding.PEM).decode())
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
            forbid(self, ("client_secret",), "is not used with private_key_jwt", "remove it")
            return
        forbid(
            self,
            ("private_key", "key_id", "certificate"),
            f"is only used with client_auth = 'private_key_jwt', not {method.value!r}",
            "remove it or set client_auth = 'private_key_jwt'",
        )
        if method is ClientAuthMethod.NONE:
            forbid(
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
