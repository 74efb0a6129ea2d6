"""Signed JWT assertions (RFC 7523): ``private_key_jwt`` client authentication (§2.2,
§3) and the JWT bearer authorization grant (§2.1) that Google service accounts use.

Signatures are checked with the registered public key or certificate; the header may
name the key by ``kid`` (must equal the registered key id, if one is registered),
``x5t`` or ``x5t#S256`` (must be the SHA-1 / SHA-256 thumbprint of the registered
certificate, as Microsoft Entra expects). ``aud`` must be the token endpoint URL.
"""

from __future__ import annotations

import base64
import hashlib
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import InvalidClientError, InvalidGrantError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from authlib.oauth2.rfc7523 import JWTBearerGrant as _JWTBearerGrant
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from .models import Client, ServiceAccount, User

if TYPE_CHECKING:
    from .server import LoopbackAuthorizationServer

CLIENT_ASSERTION_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512")
MAX_ASSERTION_LIFETIME = 3600  # Google: "exp" at most one hour after "iat"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def client_public_key(client: Client) -> RSAKey:
    """The key that verifies a client's assertions: its public key, else its certificate's."""
    if client.public_key_pem:
        return RSAKey.import_key(client.public_key_pem)
    if client.certificate_pem:
        cert = x509.load_pem_x509_certificate(client.certificate_pem.encode())
        pem = cert.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return RSAKey.import_key(pem)
    raise InvalidClientError(description="The client has no registered key.")


def check_key_headers(client: Client, headers: dict[str, Any]) -> None:
    """``alg`` must be an RSA signature; ``kid``/``x5t``/``x5t#S256`` must name the
    registered key when present (RFC 7515 §4.1.4, §4.1.7, §4.1.8)."""
    if headers.get("alg") not in CLIENT_ASSERTION_ALGS:
        raise InvalidClientError(description=f"Unsupported assertion alg {headers.get('alg')!r}.")
    kid = headers.get("kid")
    if kid is not None and client.key_id is not None and kid != client.key_id:
        raise InvalidClientError(description="The assertion's 'kid' is not the client's key.")
    thumbprints = {"x5t": hashlib.sha1, "x5t#S256": hashlib.sha256}
    for name, digest in thumbprints.items():
        if name not in headers:
            continue
        if not client.certificate_pem:
            raise InvalidClientError(description=f"'{name}' given but no certificate registered.")
        der = x509.load_pem_x509_certificate(client.certificate_pem.encode()).public_bytes(
            serialization.Encoding.DER
        )
        if headers[name] != _b64url(digest(der).digest()):
            raise InvalidClientError(description=f"The assertion's '{name}' does not match.")


class PrivateKeyJWTAuth(JWTBearerClientAssertion):
    """``private_key_jwt`` (RFC 7523 §2.2, §3; OpenID Connect Core §9): ``iss`` = ``sub``
    = client_id, ``aud`` = token URL, ``exp`` checked, ``jti`` used once."""

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, server: LoopbackAuthorizationServer) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self.server = server

    def get_audiences(self) -> list[str]:
        return self.server.token_audiences

    def extract_assertion(self, assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
        headers, claims = super().extract_assertion(assertion)
        client = self.server.store.state.clients.get(str(claims.get("sub")))
        if client is not None:
            check_key_headers(client, headers)
        return headers, claims

    def process_assertion_claims(self, assertion: str, resolve_key: Any) -> dict[str, Any]:
        # authlib decodes with joserfc's default algorithms (RS256 of the RSA ones);
        # Microsoft Entra also takes PS256.
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=CLIENT_ASSERTION_ALGS)
        except JoseError as error:
            detail = error.description or error.error  # joserfc's bad_signature has none
            raise InvalidClientError(description=f"Client assertion: {detail}") from error
        self.verify_claims(token.claims)
        return token.claims

    def resolve_client_public_key(self, client: Client) -> RSAKey:
        if client.auth_method != "private_key_jwt":
            raise InvalidClientError(description="The client cannot use private_key_jwt.")
        return client_public_key(client)

    def validate_jti(self, claims: dict[str, Any], jti: str) -> bool:
        return self.server.store.use_jti(f"{claims['sub']}:{jti}")

    def authenticate_client(self, client: Client) -> Client:
        # check_endpoint_auth_method() decides per endpoint; the registry does it too.
        return client


class JWTBearerGrant(_JWTBearerGrant):
    """RFC 7523 §2.1, as Google service accounts use it: ``iss`` = the service account
    email, ``sub`` = the impersonated (registered) user, ``aud`` = token URL, ``kid`` =
    the key id, RS256 only, ``iat`` and ``exp`` required and at most an hour apart.
    ``scope`` may be a form parameter (RFC 7521 §4.1) or a claim (Google)."""

    CLAIMS_OPTIONS = {  # noqa: RUF012 - authlib's own class attribute
        "iss": {"essential": True},
        "aud": {"essential": True},
        "exp": {"essential": True},
        "iat": {"essential": True},
    }
    LEEWAY = 30

    @property
    def store_server(self) -> LoopbackAuthorizationServer:
        server: LoopbackAuthorizationServer = self.server
        return server

    def get_audiences(self) -> list[str]:
        return self.store_server.token_audiences

    def extract_assertion(self, assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
        headers, claims = super().extract_assertion(assertion)
        if headers.get("alg") != "RS256":
            raise InvalidGrantError(description="The assertion must be signed with RS256.")
        account = self.store_server.store.state.service_accounts.get(str(claims.get("iss")))
        kid = headers.get("kid")
        if account is not None and kid is not None and kid != account.key_id:
            raise InvalidGrantError(description="The assertion's 'kid' is not the account's key.")
        return headers, claims

    def verify_claims(self, claims: Any) -> None:
        super().verify_claims(claims)
        if int(claims["exp"]) - int(claims["iat"]) > MAX_ASSERTION_LIFETIME:
            raise InvalidGrantError(description="The assertion lives longer than an hour.")

    def process_assertion_claims(self, assertion: str) -> dict[str, Any]:
        claims: dict[str, Any] = super().process_assertion_claims(assertion)
        self.request.assertion_claims = claims
        return claims

    def resolve_issuer_client(self, issuer: str) -> ServiceAccount | None:
        return self.store_server.store.state.service_accounts.get(issuer)

    def resolve_client_public_key(self, client: ServiceAccount) -> RSAKey:
        return RSAKey.import_key(client.public_key_pem)

    def authenticate_user(self, subject: str) -> User | None:
        return self.store_server.store.state.users.get(subject)

    def has_granted_permission(self, client: ServiceAccount, user: User) -> bool:
        return True  # domain-wide delegation is assumed granted

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        claims = getattr(self.request, "assertion_claims", {})
        token = self.generate_token(
            scope=self.request.payload.scope or claims.get("scope"),
            user=self.request.user,
            include_refresh_token=False,
        )
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER
