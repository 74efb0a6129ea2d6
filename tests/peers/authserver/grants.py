"""The grants and endpoints of the test authorization server: authlib's classes with the
storage hooks filled in and the checks a real server makes that authlib leaves to us."""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidRequestError, InvalidScopeError, grants
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint
from authlib.oauth2.rfc8628 import DeviceCodeGrant as _DeviceCodeGrant

from .assertions import JWTBearerGrant
from .models import (
    AUTH_METHODS,
    SECRET_METHODS,
    AccessToken,
    AuthCode,
    Client,
    DeviceCredential,
    RefreshToken,
    User,
)

if TYPE_CHECKING:
    from .store import Store

__all__ = [
    "PKCE",
    "AuthorizationCodeGrant",
    "ClientCredentialsGrant",
    "DeviceCodeGrant",
    "DeviceEndpoint",
    "IntrospectionEndpoint",
    "JWTBearerGrant",
    "PasswordGrant",
    "RefreshTokenGrant",
    "RevocationEndpoint",
    "introspection_payload",
]

# Every method is tried; the client's check_endpoint_auth_method() admits only its own.
TOKEN_AUTH = list(AUTH_METHODS)


def _store(holder: Any) -> Store:
    store: Store = holder.server.store
    return store


class PKCE(CodeChallenge):
    """RFC 7636 §4.3/§4.4.1: a public client must send a ``code_challenge`` with method
    S256; a confidential client may send one (S256 or plain). The verifier is checked
    at the token endpoint (§4.6) by authlib."""

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        super().validate_code_challenge(grant, redirect_uri)
        client: Client = grant.request.client
        if not client.is_public:
            return
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("A public client must send 'code_challenge' (PKCE).")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("A public client must use code_challenge_method=S256.")


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    """RFC 6749 §4.1. A code is one-time: presenting a used code again answers
    invalid_grant and revokes every token issued from it (§4.1.2); an expired code
    answers invalid_grant."""

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH

    def save_authorization_code(self, code: str, request: Any) -> None:
        payload = request.payload.data
        store = _store(self)
        store.state.codes[code] = AuthCode(
            code=code,
            client_id=request.client.get_client_id(),
            user=request.user.username,
            scope=request.scope or "",
            redirect_uri=request.payload.redirect_uri,
            expires_at=time.time() + store.state.config.code_lifetime,
            code_challenge=payload.get("code_challenge"),
            code_challenge_method=payload.get("code_challenge_method"),
        )

    def query_authorization_code(self, code: str, client: Client) -> AuthCode | None:
        store = _store(self)
        found = store.state.codes.get(code)
        if found is None or found.client_id != client.get_client_id():
            return None
        if found.used:
            store.revoke_family(found.family)
            return None
        if found.is_expired():
            return None
        return found

    def delete_authorization_code(self, authorization_code: AuthCode) -> None:
        authorization_code.used = True  # kept, to recognise a replay

    def authenticate_user(self, authorization_code: AuthCode) -> User | None:
        return _store(self).state.users.get(authorization_code.user)


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """RFC 6749 §6 with rotation (RFC 9700 §4.14.2): each refresh returns a new refresh
    token and retires the old one; presenting a retired one again is reuse, which
    revokes the whole grant. With rotation off the response has no refresh_token."""

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH

    @property
    def INCLUDE_NEW_REFRESH_TOKEN(self) -> bool:  # noqa: N802 - authlib's name
        return _store(self).state.config.rotate_refresh_tokens

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        store = _store(self)
        found = store.state.refresh_tokens.get(refresh_token)
        if found is None:
            return None
        if found.status == "rotated":
            store.revoke_family(found.family)  # reuse detection
            return None
        return found if found.status == "active" else None

    def authenticate_user(self, refresh_token: RefreshToken) -> User | None:
        return _store(self).state.users.get(refresh_token.user)

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        if self.INCLUDE_NEW_REFRESH_TOKEN:
            refresh_token.status = "rotated"


class PasswordGrant(grants.ResourceOwnerPasswordCredentialsGrant):
    """RFC 6749 §4.3; wrong credentials answer invalid_grant (§5.2), not authlib's
    invalid_request."""

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH

    def authenticate_user(self, username: str, password: str) -> User:
        user = _store(self).state.users.get(username)
        if user is None or not secrets.compare_digest(user.password, password):
            raise InvalidGrantError(description="Invalid username or password.")
        return user


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """RFC 6749 §4.4: confidential clients only (``Client.check_grant_type``)."""

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH


class DeviceCodeGrant(_DeviceCodeGrant):
    """RFC 8628 §3.4/§3.5: authorization_pending until approved, slow_down (and the
    interval grows by the configured increment) when polled faster than the interval,
    access_denied, expired_token; a device code yields tokens once."""

    TOKEN_ENDPOINT_AUTH_METHODS = TOKEN_AUTH

    def query_device_credential(self, device_code: str) -> DeviceCredential:
        found = _store(self).state.devices.get(device_code)
        if found is None:
            raise InvalidGrantError(description="Unknown device_code.")
        return found

    def validate_device_credential(self, credential: DeviceCredential) -> Any:
        if credential.status == "consumed":
            raise InvalidGrantError(description="The device_code was already used.")
        return super().validate_device_credential(credential)

    def query_user_grant(self, user_code: str) -> tuple[User | None, bool] | None:
        store = _store(self)
        credential = next(
            (d for d in store.state.devices.values() if d.user_code == user_code), None
        )
        if credential is None or credential.status == "pending":
            return None
        if credential.status == "denied":
            return None, False
        return store.state.users.get(credential.user or ""), True

    def should_slow_down(self, credential: DeviceCredential) -> bool:
        now = time.time()
        last, credential.last_poll = credential.last_poll, now
        if last is not None and now - last < credential.interval:
            credential.interval += _store(self).state.config.slow_down_increment
            return True
        return False

    def create_token_response(self) -> Any:
        result = super().create_token_response()
        self.request.credential.status = "consumed"
        return result


class DeviceEndpoint(DeviceAuthorizationEndpoint):
    """RFC 8628 §3.1/§3.2: the device authorization endpoint (``POST /device``)."""

    CLIENT_AUTH_METHODS = TOKEN_AUTH

    def authenticate_client(self, request: Any) -> Client:
        client: Client = super().authenticate_client(request)
        scope = client.get_allowed_scope(request.payload.scope)
        if scope is None:
            raise InvalidScopeError()
        return client

    def get_verification_uri(self) -> str:
        base: str = self.server.base_url
        return f"{base}/device/verify"

    @property
    def EXPIRES_IN(self) -> int:  # noqa: N802 - authlib's name
        return _store(self).state.config.device_code_lifetime

    @property
    def INTERVAL(self) -> int:  # noqa: N802 - authlib's name
        return _store(self).state.config.device_interval

    def save_device_credential(self, client_id: str, scope: str, data: dict[str, Any]) -> None:
        _store(self).state.devices[data["device_code"]] = DeviceCredential(
            device_code=data["device_code"],
            user_code=data["user_code"],
            client_id=client_id,
            scope=scope or "",
            expires_at=time.time() + data["expires_in"],
            interval=data["interval"],
        )


def introspection_payload(token: AccessToken | RefreshToken | None) -> dict[str, Any]:
    """RFC 7662 §2.2. The user is under ``email``, ``username`` and ``sub`` (Dovecot's
    ``username_attribute`` defaults to ``email``); ``active`` is false for an unknown,
    expired or revoked token."""
    if token is None or token.is_expired() or token.is_revoked():
        return {"active": False}
    payload: dict[str, Any] = {
        "active": True,
        "scope": token.scope,
        "client_id": token.client_id,
        "iat": int(token.issued_at),
    }
    if isinstance(token, AccessToken):
        payload["token_type"] = "Bearer"
        payload["exp"] = int(token.expires_at)
    else:
        payload["token_type"] = "refresh_token"
    if token.user is not None:
        payload.update(email=token.user, username=token.user, sub=token.user)
    else:
        payload["sub"] = token.client_id
    return payload


class IntrospectionEndpoint(_IntrospectionEndpoint):
    """RFC 7662 §2.1 (``POST /introspect``): any authenticated confidential client (a
    resource server such as Dovecot) may introspect any token."""

    CLIENT_AUTH_METHODS = [*SECRET_METHODS, "private_key_jwt"]  # noqa: RUF012

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return _store(self).find_token(token_string, token_type_hint)

    def check_permission(self, token: Any, client: Client, request: Any) -> bool:
        return True

    def create_introspection_payload(self, token: Any) -> dict[str, Any]:
        return introspection_payload(token)


class RevocationEndpoint(_RevocationEndpoint):
    """RFC 7009 §2 (``POST /revoke``): revoking a refresh token revokes the whole grant
    (its access tokens too, §2.1); an unknown token still answers 200 (§2.2)."""

    CLIENT_AUTH_METHODS = TOKEN_AUTH

    def query_token(self, token_string: str, token_type_hint: str | None) -> Any:
        return _store(self).find_token(token_string, token_type_hint)

    def revoke_token(self, token: AccessToken | RefreshToken, request: Any) -> None:
        if isinstance(token, RefreshToken):
            _store(self).revoke_family(token.family)
        else:
            token.revoked = True
