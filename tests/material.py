"""Key material made on the fly for tests: RSA keys, self-signed certificates, and
Google-style service-account JSON. Nothing here is committed as a file."""

from __future__ import annotations

import datetime as dt
import json
from functools import cache

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def rsa_key(size: int = 2048, n: int = 0) -> rsa.RSAPrivateKey:
    """A cached RSA key; ``n`` picks a different key of the same size. However it is
    called (``rsa_key()``, ``rsa_key(n=0)``, ``rsa_key(2048, 0)``), equal arguments give
    the same key."""
    return _rsa_key(size, n)


@cache
def _rsa_key(size: int, n: int) -> rsa.RSAPrivateKey:
    del n  # part of the cache key only
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def key_pem(key: rsa.RSAPrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@cache
def cert_pem(key: rsa.RSAPrivateKey, cn: str = "mailoauth test") -> str:
    """A self-signed certificate for ``key``, the same one on every call (its x5t
    thumbprint must match between what a test registers and what it configures)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def service_account_json(
    key: rsa.RSAPrivateKey, email: str = "sa@proj.iam.gserviceaccount.com"
) -> str:
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "proj",
            "private_key_id": "0123456789abcdef",
            "private_key": key_pem(key),
            "client_email": email,
            "client_id": "109876543210987654321",
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )
