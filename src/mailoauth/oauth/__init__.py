"""OAuth2 for mail: one function per grant on httpx and authlib's plain builders.

::

    flows.py               the grants, one async function each; returns TokenSet, stores nothing
    ├── refresh / password_grant / client_credentials / jwt_bearer   (RFC 6749 §6, §4.3,
    │                                                                  §4.4; RFC 7523 §2.1)
    ├── authorization_code.py  begin_authorization → parse_callback → exchange_code
    │                          (RFC 6749 §4.1, RFC 7636 PKCE S256)
    ├── device_code.py         start_device_authorization → poll_device (RFC 8628)
    └── revocation.py          revoke (RFC 7009)
          │
          ▼
    token_endpoint.py      request_token: client auth + POST + parse_token_response (§5.1)
          │
          ├── client_auth.py   client_secret_post | client_secret_basic | private_key_jwt
          │                    (+ kid, x5t, x5t#S256) | none   (RFC 6749 §2.3, RFC 7523 §2.2)
          │     └── signing.py PEM key → RS256 / ES256 JWT; certificate thumbprints
          └── http.py          post_form: the one network call; answers classified into
                               ProviderRejected (permanent) / ProviderUnavailable (transient,
                               retry_after); provider text cleaned of anything secret
    token.py               TokenSet, DEFAULT_LIFETIME: the typed value every grant returns

    tokens.py              TokenService: cache, refresh-ahead, single flight, persist first
    hints.py               what a human should do about a refused grant
    loopback.py            the one-shot listener that receives the authorization redirect

Network I/O happens only in the ``async`` functions, on an ``httpx.AsyncClient`` the
caller owns; time is always a parameter (``now``); nothing is stored here.
"""

from mailoauth.oauth.authorization_code import (
    PendingAuthorization,
    begin_authorization,
    code_challenge,
    exchange_code,
    parse_callback,
)
from mailoauth.oauth.client_auth import CLIENT_ASSERTION_TYPE, authenticate
from mailoauth.oauth.device_code import (
    DeviceAuthorization,
    poll_device,
    start_device_authorization,
)
from mailoauth.oauth.flows import (
    JWT_BEARER_GRANT,
    client_credentials,
    jwt_bearer,
    password_grant,
    refresh,
)
from mailoauth.oauth.http import post_form
from mailoauth.oauth.revocation import revoke
from mailoauth.oauth.token import DEFAULT_LIFETIME, TokenSet
from mailoauth.oauth.token_endpoint import parse_token_response

__all__ = [
    "CLIENT_ASSERTION_TYPE",
    "DEFAULT_LIFETIME",
    "JWT_BEARER_GRANT",
    "DeviceAuthorization",
    "PendingAuthorization",
    "TokenSet",
    "authenticate",
    "begin_authorization",
    "client_credentials",
    "code_challenge",
    "exchange_code",
    "jwt_bearer",
    "parse_callback",
    "parse_token_response",
    "password_grant",
    "poll_device",
    "post_form",
    "refresh",
    "revoke",
    "start_device_authorization",
]
