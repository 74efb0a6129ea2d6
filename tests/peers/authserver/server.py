"""authlib's Flask ``AuthorizationServer`` bound to the in-memory store: client lookup,
token generation and storage, and the grants and endpoints this test server offers."""

from __future__ import annotations

import secrets
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidClientError, InvalidScopeError, OAuth2Error
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from flask import Flask
from flask import request as flask_request

from .assertions import PrivateKeyJWTAuth
from .grants import (
    PKCE,
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    DeviceCodeGrant,
    DeviceEndpoint,
    IntrospectionEndpoint,
    JWTBearerGrant,
    PasswordGrant,
    RefreshTokenGrant,
    RevocationEndpoint,
)
from .models import AuthCode, Client, RefreshToken, ServiceAccount, User
from .store import Store


class LoopbackAuthorizationServer(AuthorizationServer):
    """The authorization server (RFC 6749) with PKCE (RFC 7636), JWT client auth and
    grants (RFC 7523), device authorization (RFC 8628), revocation (RFC 7009) and
    introspection (RFC 7662)."""

    def __init__(self, app: Flask, store: Store, base_url: str) -> None:
        self.store = store
        self.base_url = base_url
        super().__init__(app, query_client=self._find_client, save_token=self._save_token)
        self.register_token_generator("default", self._generate_token)
        self.register_client_auth_method("private_key_jwt", PrivateKeyJWTAuth(self))
        self.register_grant(AuthorizationCodeGrant, [PKCE(required=True)])
        self.register_grant(RefreshTokenGrant)
        self.register_grant(PasswordGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(JWTBearerGrant)
        self.register_grant(DeviceCodeGrant)
        self.register_endpoint(DeviceEndpoint)
        self.register_endpoint(RevocationEndpoint)
        self.register_endpoint(IntrospectionEndpoint)

    @property
    def token_audiences(self) -> list[str]:
        """RFC 7523 §3: ``aud`` must name this server's token endpoint."""
        port = self.base_url.rsplit(":", 1)[1]
        return [f"http://127.0.0.1:{port}/token", f"http://localhost:{port}/token"]

    def _find_client(self, client_id: str) -> Client | None:
        return self.store.state.clients.get(client_id)

    def _generate_token(
        self,
        grant_type: str,
        client: Client | ServiceAccount,
        user: User | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """RFC 6749 §5.1 / RFC 6750 §4: an opaque random Bearer token."""
        granted = client.get_allowed_scope(scope)
        if granted is None:
            raise InvalidScopeError()
        if expires_in is None:
            expires_in = self.store.state.config.access_token_lifetime
        token: dict[str, Any] = {
            "access_token": secrets.token_urlsafe(32),
            "token_type": "Bearer",
            "expires_in": expires_in,
        }
        if include_refresh_token and user is not None and client.check_grant_type("refresh_token"):
            token["refresh_token"] = secrets.token_urlsafe(48)
        if granted:
            token["scope"] = granted
        return token

    def _save_token(self, token: dict[str, Any], request: Any) -> None:
        refresh = request.refresh_token if isinstance(request.refresh_token, RefreshToken) else None
        family = self.store.issue(
            token,
            client_id=request.client.get_client_id(),
            user=request.user.username if isinstance(request.user, User) else None,
            grant_type=request.payload.grant_type,
            family=refresh.family if refresh else None,
        )
        if isinstance(request.authorization_code, AuthCode):
            request.authorization_code.family = family

    def authenticate_client(self, request: Any, methods: Any, endpoint: str = "token") -> Any:
        try:
            client = super().authenticate_client(request, methods, endpoint)
        except InvalidClientError as error:
            self._explain(error, request)
            raise
        if endpoint == "token":
            self.store.state.token_auth_methods.append(request.auth_method)
        return client

    def _explain(self, error: InvalidClientError, request: Any) -> None:
        """Name the registered method in the error, instead of authlib's list of all."""
        client_id, _ = extract_basic_authorization(request.headers)
        client = self._find_client(client_id or request.payload.client_id or "")
        if client is not None and (error.description or "").startswith("The client cannot"):
            error.description = (
                f"Client {client.client_id!r} is registered for {client.auth_method}: "
                "the request used another method or wrong credentials."
            )

    def handle_error_response(self, request: Any, error: OAuth2Error) -> Any:
        """RFC 6749 §5.2: a failed client authentication answers 401 with
        ``WWW-Authenticate`` at every endpoint where a client authenticates (authlib
        answers 400 unless HTTP Basic was one of the methods tried)."""
        if isinstance(error, InvalidClientError) and flask_request.path != "/authorize":
            error.status_code = 401
        return super().handle_error_response(request, error)
