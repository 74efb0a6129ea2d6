"""Signed JWT assertions (RFC 7519, RFC 7515) for client authentication and the JWT
bearer grant (RFC 7523 §2.1, §2.2, §3).

One job: turn a PEM private key into a signature algorithm and a signed compact JWT, and
name a certificate by thumbprint. The claims are the caller's; so is the time (no clock
here). The algorithm follows the key: RSA signs RS256, EC signs ES256 / ES384 / ES512 by
curve (RFC 7518 §3.1).

Thumbprints (RFC 7515 §4.1.7, §4.1.8): ``x5t`` is the base64url SHA-1 of the DER
certificate, which Microsoft's identity platform uses to find a certificate credential;
``x5t#S256`` is the SHA-256 one for servers that want it.

JWTs are built with joserfc (typed; authlib 1.7+ signs through it too).
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from mailoauth.errors import ConfigError
from mailoauth.secret import Secret

__all__ = ["SigningKey", "certificate_thumbprints", "sign_jwt", "signing_key"]

SigningKey = RSAKey | ECKey

_EC_ALGORITHMS: Final = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signing_key(field: str, pem: Secret) -> tuple[SigningKey, str]:
    """The key in ``pem`` and the JWS algorithm it signs with.

    Raises :class:`ConfigError` on ``field`` for a key that cannot sign a JWT here; the
    message never contains the key.
    """
    data = pem.reveal().encode()
    try:
        private = load_pem_private_key(data, password=None)
    except Exception:  # ValueError, TypeError, UnsupportedAlgorithm: never echo the key
        raise ConfigError(
            field, "is not a usable PEM private key", "give an unencrypted RSA or EC PEM key"
        ) from None
    if isinstance(private, rsa.RSAPrivateKey):
        return RSAKey.import_key(data), "RS256"
    if isinstance(private, ec.EllipticCurvePrivateKey):
        alg = _EC_ALGORITHMS.get(private.curve.name)
        if alg is not None:
            return ECKey.import_key(data), alg
    raise ConfigError(
        field,
        "is a key type that cannot sign a JWT assertion here",
        "use an RSA key (RS256) or an EC key on P-256 / P-384 / P-521",
    )


def certificate_thumbprints(field: str, pem: str) -> dict[str, str]:
    """``{"x5t": ..., "x5t#S256": ...}`` for the PEM certificate (RFC 7515 §4.1.7-8)."""
    try:
        der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(Encoding.DER)
    except ValueError:
        raise ConfigError(
            field, "is not a PEM certificate", "give the certificate uploaded to the provider"
        ) from None
    return {
        "x5t": b64url(hashlib.sha1(der, usedforsecurity=False).digest()),  # a name, not a MAC
        "x5t#S256": b64url(hashlib.sha256(der).digest()),
    }


def sign_jwt(key: SigningKey, alg: str, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A compact JWS of ``claims`` with ``header`` (``alg`` and ``typ: JWT`` added)."""
    return jwt.encode({**header, "alg": alg}, claims, key, algorithms=[alg])
