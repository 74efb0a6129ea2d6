"""Client authentication at the token endpoint: RFC 6749 §2.3 and RFC 7523 §2.2.

``authenticate`` takes the form of a token (or device, or revocation) request and returns
the form and headers that prove who the client is, by the provider's ``client_auth``:

===================  ======================================================================
client_secret_post   ``client_id`` and ``client_secret`` in the body (RFC 6749 §2.3.1)
client_secret_basic  ``Authorization: Basic`` of the form-urlencoded ``id:secret``
                     (RFC 6749 §2.3.1 and Appendix B); nothing added to the body
private_key_jwt      ``client_assertion_type`` + ``client_assertion`` (RFC 7523 §2.2): a
                     JWT signed with the provider's key, iss = sub = client_id, aud = the
                     token endpoint, a random jti, iat / nbf / exp (5 minutes) from ``now``
                     (RFC 7523 §3); header ``kid`` = key_id, and ``x5t`` / ``x5t#S256``
                     when a certificate is configured (Microsoft names the key by ``x5t``)
none                 ``client_id`` in the body only (a public client, RFC 6749 §2.1)
===================  ======================================================================

Pure: no I/O, no clock, the input form is never modified.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import quote_plus

from mailoauth.errors import ConfigError
from mailoauth.models import Provider
from mailoauth.oauth.signing import certificate_thumbprints, sign_jwt, signing_key
from mailoauth.providers import ClientAuthMethod
from mailoauth.secret import Secret

__all__ = [
    "ASSERTION_LIFETIME",
    "CLIENT_ASSERTION_TYPE",
    "authenticate",
    "basic_authorization",
    "client_assertion",
]

CLIENT_ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Lifetime of a client assertion: short, as RFC 7523 §3 advises (Microsoft allows 10 min).
ASSERTION_LIFETIME: Final = timedelta(minutes=5)


def authenticate(
    provider: Provider, token_url: str, form: dict[str, str], now: datetime
) -> tuple[dict[str, str], dict[str, str]]:
    """The request ``form`` with the client's credentials added, and the headers to send."""
    method = provider.client_auth
    form = dict(form)
    headers: dict[str, str] = {}
    if method is ClientAuthMethod.CLIENT_SECRET_BASIC:
        secret = _client_secret(provider)
        headers["Authorization"] = basic_authorization(provider.client_id, secret)
    elif method is ClientAuthMethod.CLIENT_SECRET_POST:
        form["client_id"] = provider.client_id
        form["client_secret"] = _client_secret(provider).reveal()
    elif method is ClientAuthMethod.PRIVATE_KEY_JWT:
        form["client_id"] = provider.client_id
        form["client_assertion_type"] = CLIENT_ASSERTION_TYPE
        form["client_assertion"] = client_assertion(provider, token_url, now).reveal()
    else:
        form["client_id"] = provider.client_id
    return form, headers


def basic_authorization(client_id: str, secret: Secret) -> str:
    """``Basic base64(urlencode(id) ":" urlencode(secret))`` (RFC 6749 §2.3.1)."""
    pair = f"{quote_plus(client_id, safe='')}:{quote_plus(secret.reveal(), safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode("ascii")


def client_assertion(provider: Provider, token_url: str, now: datetime) -> Secret:
    """The signed ``client_assertion`` JWT of RFC 7523 §2.2 / §3 for ``provider``."""
    if provider.private_key is None:
        raise ConfigError(
            "private_key", "is required for private_key_jwt", "give the PEM private key"
        )
    key, alg = signing_key("private_key", provider.private_key)
    header: dict[str, str] = {}
    if provider.key_id:
        header["kid"] = provider.key_id
    if provider.certificate is not None:
        header.update(certificate_thumbprints("certificate", provider.certificate))
    issued = int(now.timestamp())
    claims = {
        "iss": provider.client_id,
        "sub": provider.client_id,
        "aud": token_url,
        "jti": secrets.token_urlsafe(24),
        "iat": issued,
        "nbf": issued,
        "exp": issued + int(ASSERTION_LIFETIME.total_seconds()),
    }
    return Secret(sign_jwt(key, alg, header, claims))


def _client_secret(provider: Provider) -> Secret:
    secret = provider.client_secret
    if secret is None or not secret:
        raise ConfigError(
            "client_secret",
            f"is required for {provider.client_auth.value}",
            "set the provider's client secret",
        )
    return secret
