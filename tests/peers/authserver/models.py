"""The test authorization server's records: plain dataclasses that authlib's server side
accepts as its client, authorization-code, token and device-credential models.

Every record round-trips through JSON (``dataclasses.asdict`` / ``cls(**data)``) so the
state survives a restart of the server process. Times are Unix epoch seconds.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin
from authlib.oauth2.rfc8628 import DeviceCredentialMixin

DEFAULT_SCOPES = ("mail", "offline_access", "email", "openid")
SECRET_METHODS = ("client_secret_basic", "client_secret_post")
AUTH_METHODS = (*SECRET_METHODS, "private_key_jwt", "none")
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEVICE_CODE = "urn:ietf:params:oauth:grant-type:device_code"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def resolve_scope(allowed: list[str], requested: str | None) -> str | None:
    """RFC 6749 §3.3: an omitted scope means the client's default (all it may have); a
    requested scope must be a subset of the allowed ones, else ``None`` (→ invalid_scope)."""
    if not requested:
        return " ".join(allowed)
    wanted = list(dict.fromkeys(requested.split()))
    if not set(wanted) <= set(allowed):
        return None
    return " ".join(wanted)


def redirect_uri_matches(registered: str, requested: str) -> bool:
    """RFC 6749 §3.1.2.3 exact match, except RFC 8252 §7.3: for a loopback IP/localhost
    redirect registered without (or with any) port, any port matches when scheme, host,
    path and query are the same — what Google and Microsoft accept for native apps."""
    if registered == requested:
        return True
    reg, req = urlsplit(registered), urlsplit(requested)
    if reg.scheme != "http" or req.scheme != "http":
        return False
    if reg.hostname not in LOOPBACK_HOSTS or req.hostname != reg.hostname:
        return False
    if reg.username or req.username or reg.password or req.password:
        return False
    try:
        req.port  # noqa: B018 - a malformed port raises
    except ValueError:
        return False
    return (reg.path or "/") == (req.path or "/") and reg.query == req.query and not req.fragment


@dataclass
class User:
    username: str
    password: str = "pw"


@dataclass
class Client(ClientMixin):
    """A registered client (RFC 6749 §2) with exactly one token endpoint auth method
    (RFC 7591 ``token_endpoint_auth_method``)."""

    client_id: str
    auth_method: str
    secret: str | None = None
    public_key_pem: str | None = None
    certificate_pem: str | None = None
    key_id: str | None = None
    redirect_uris: list[str] = field(default_factory=lambda: ["http://127.0.0.1/callback"])
    scopes: list[str] = field(default_factory=lambda: list(DEFAULT_SCOPES))
    grant_types: list[str] | None = None

    @property
    def is_public(self) -> bool:
        return self.auth_method == "none"

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        return self.redirect_uris[0] if self.redirect_uris else None

    def get_allowed_scope(self, scope: str | None) -> str | None:
        return resolve_scope(self.scopes, scope)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return any(redirect_uri_matches(reg, redirect_uri) for reg in self.redirect_uris)

    def check_client_secret(self, client_secret: str) -> bool:
        if self.auth_method not in SECRET_METHODS or not self.secret:
            return False
        return hmac.compare_digest(self.secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """The token and device endpoints take only the registered method. Revocation and
        introspection take either secret method from a secret client (Dovecot's
        ``introspection_mode = post`` sends the secret in the form)."""
        if endpoint in ("revocation", "introspection") and self.auth_method in SECRET_METHODS:
            return method in SECRET_METHODS
        return method == self.auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == JWT_BEARER:
            return False  # the JWT bearer grant is for service accounts
        if grant_type == "client_credentials" and self.is_public:
            return False  # RFC 6749 §4.4: confidential clients only
        return self.grant_types is None or grant_type in self.grant_types


@dataclass
class ServiceAccount(ClientMixin):
    """A Google-style service account: the issuer of RFC 7523 §2.1 JWT bearer grants."""

    email: str
    public_key_pem: str
    key_id: str
    scopes: list[str] = field(default_factory=lambda: list(DEFAULT_SCOPES))

    def get_client_id(self) -> str:
        return self.email

    def get_allowed_scope(self, scope: str | None) -> str | None:
        return resolve_scope(self.scopes, scope)

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == JWT_BEARER


@dataclass
class AuthCode(AuthorizationCodeMixin):
    """An authorization code (RFC 6749 §4.1.2), kept after use to detect a replay."""

    code: str
    client_id: str
    user: str
    scope: str
    redirect_uri: str | None
    expires_at: float
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    used: bool = False
    family: str | None = None

    def get_redirect_uri(self) -> str | None:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def is_expired(self) -> bool:
        return self.expires_at < time.time()


@dataclass
class AccessToken(TokenMixin):
    """An opaque Bearer access token (RFC 6750). ``family`` ties every token issued
    from one grant (code, password, device) and its refreshes together."""

    access_token: str
    client_id: str
    user: str | None
    scope: str
    grant_type: str
    family: str
    issued_at: float
    expires_at: float
    revoked: bool = False

    def check_client(self, client: ClientMixin) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return int(self.expires_at - self.issued_at)

    def is_expired(self) -> bool:
        return self.expires_at <= time.time()

    def is_revoked(self) -> bool:
        return self.revoked

    def get_user(self) -> str | None:
        return self.user


@dataclass
class RefreshToken(TokenMixin):
    """A refresh token (RFC 6749 §6). ``status``: active, rotated (replaced by a newer
    one: presenting it again is reuse), revoked, expired."""

    refresh_token: str
    client_id: str
    user: str
    scope: str
    family: str
    issued_at: float
    status: str = "active"

    def check_client(self, client: ClientMixin) -> bool:
        return bool(client.get_client_id() == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return 0

    def is_expired(self) -> bool:
        return self.status == "expired"

    def is_revoked(self) -> bool:
        return self.status != "active"

    def get_user(self) -> str:
        return self.user


@dataclass
class DeviceCredential(DeviceCredentialMixin):
    """A pending device authorization (RFC 8628 §3.2). ``status``: pending, approved,
    denied, consumed (a token was issued: the device code is spent)."""

    device_code: str
    user_code: str
    client_id: str
    scope: str
    expires_at: float
    interval: int
    last_poll: float | None = None
    status: str = "pending"
    user: str | None = None

    def get_client_id(self) -> str:
        return self.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_user_code(self) -> str:
        return self.user_code

    def is_expired(self) -> bool:
        return self.expires_at < time.time()


@dataclass
class Config:
    """Server behaviour the tests control (``/_control/config``)."""

    access_token_lifetime: int = 3600
    code_lifetime: int = 60
    rotate_refresh_tokens: bool = True
    consent: str = "approve"
    device_interval: int = 1
    slow_down_increment: int = 5
    device_code_lifetime: int = 600

    def update(self, changes: dict[str, Any]) -> None:
        """Set the given settings (``None`` leaves one as it is); all or nothing."""
        unknown = set(changes) - set(self.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}")
        if changes.get("consent") not in (None, "approve", "deny", "page"):
            raise ValueError(f"consent must be approve, deny or page, not {changes['consent']!r}")
        converted = {
            key: type(getattr(self, key))(value)
            for key, value in changes.items()
            if value is not None
        }
        for key, value in converted.items():
            setattr(self, key, value)
