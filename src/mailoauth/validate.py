"""Small pure checks shared by the models: each returns the cleaned value or raises
:class:`~mailoauth.errors.ConfigError` naming the field and the fix.

No I/O. Key material is parsed with ``cryptography`` only to prove it parses; nothing is
kept from the parse but a yes or no (and, for certificates, the public key to compare).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes, PublicKeyTypes

from mailoauth.errors import ConfigError

__all__ = [
    "check_address",
    "check_certificate",
    "check_delivery_target",
    "check_host",
    "check_identity",
    "check_name",
    "check_port",
    "check_private_key",
    "check_redirect_uri",
    "check_url",
    "has_control",
    "is_loopback_host",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_ADDRESS = re.compile(r"[^@\s<>\"(),;:]+@[^@\s<>\"(),;:]+")
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOST = re.compile(rf"(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*\.?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_name(field: str, value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ConfigError(
            field,
            f"{value!r} is not a valid name",
            "use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return value


def check_identity(field: str, value: str) -> str:
    """A login name sent inside SASL: non-empty, no control characters (XOAUTH2 uses \\x01)."""
    if not value.strip():
        raise ConfigError(field, "is empty", "set the user name the mail server expects")
    if _CONTROL.search(value) or value != value.strip():
        raise ConfigError(
            field,
            f"{value!r} contains control characters or surrounding spaces",
            "give the plain login name, e.g. user@example.com",
        )
    return value


def check_address(field: str, value: str) -> str:
    if not _ADDRESS.fullmatch(value):
        raise ConfigError(
            field, f"{value!r} is not an email address", "write it as local-part@domain"
        )
    return value


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(field: str, value: str) -> str:
    candidate = value.strip("[]")
    try:
        ipaddress.ip_address(candidate)
    except ValueError:
        if not _HOST.fullmatch(value):
            raise ConfigError(
                field, f"{value!r} is not a host name or IP address", "e.g. smtp.example.com"
            ) from None
    return value


def check_port(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ConfigError(field, f"{value!r} is out of range", "use a port from 1 to 65535")
    return value


def check_url(field: str, value: str) -> str:
    """An http(s) URL with a host. Plain http is accepted only for loopback test servers,
    because these URLs carry client secrets and tokens."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            field, f"{value!r} is not an http(s) URL", "write it as https://host/path"
        )
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        raise ConfigError(
            field,
            f"{value!r} would send secrets in clear text",
            "use https (plain http is accepted only for loopback addresses)",
        )
    if parts.fragment:
        raise ConfigError(field, f"{value!r} has a #fragment", "remove the part after '#'")
    return value


def check_delivery_target(field: str, value: str) -> str:
    """Where fetched mail goes: ``maildir:/absolute/path`` or ``webhook:URL`` (https, or
    http to loopback: the webhook receives whole messages)."""
    kind, sep, rest = value.partition(":")
    if kind == "maildir" and sep:
        if not rest.startswith("/") or has_control(rest):
            raise ConfigError(
                field, f"{value!r} needs an absolute path", "e.g. maildir:/var/mail/helpdesk"
            )
        return value
    if kind == "webhook" and sep:
        check_url(field, rest)
        return value
    raise ConfigError(
        field,
        f"{value!r} is not a delivery target",
        "use maildir:/absolute/path or webhook:https://host/path",
    )


def has_control(value: str) -> bool:
    return _CONTROL.search(value) is not None


def check_redirect_uri(field: str, value: str, example: str = "/oauth/callback") -> str:
    """RFC 8252 §7.3 / §8.3: https, or http to a loopback address (native apps)."""
    parts = urlsplit(value)
    loopback = parts.scheme == "http" and is_loopback_host(parts.hostname or "")
    if not (parts.scheme == "https" and parts.hostname) and not loopback:
        raise ConfigError(
            field,
            f"{value!r} is neither https nor a loopback http URL",
            f"use https://your-host{example} or http://127.0.0.1:PORT{example}",
        )
    if parts.fragment:
        raise ConfigError(field, f"{value!r} has a #fragment", "remove the part after '#'")
    return value


#: Public keys of PEM private keys already proven to parse, by SHA-256 of the PEM. A full
#: RSA check costs ~60 ms and models are rebuilt on every store read; this keeps reads
#: cheap without holding any private material.
_CHECKED_KEYS: dict[bytes, PublicKeyTypes] = {}
_CHECKED_KEYS_MAX = 1024


def check_private_key(field: str, pem: str) -> PublicKeyTypes:
    """Prove ``pem`` is a usable unencrypted private key; return its public key."""
    digest = hashlib.sha256(pem.encode()).digest()
    if (public := _CHECKED_KEYS.get(digest)) is not None:
        return public
    if len(_CHECKED_KEYS) >= _CHECKED_KEYS_MAX:
        _CHECKED_KEYS.clear()
    key = _parse_private_key(field, pem)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ConfigError(
            field,
            f"is a {type(key).__name__.removeprefix('_')} key, which cannot sign OAuth assertions",
            "use an RSA (2048 bits or more) or EC P-256 key",
        )
    public = key.public_key()
    _CHECKED_KEYS[digest] = public
    return public


def _parse_private_key(field: str, pem: str) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        reason = "it is encrypted" if "encrypted" in str(exc).lower() else "it does not parse"
        raise ConfigError(
            field,
            f"is not a usable PEM private key ({reason})",
            "give an unencrypted PEM key (-----BEGIN PRIVATE KEY-----), "
            "e.g. `openssl pkcs8 -topk8 -nocrypt -in key.pem`",
        ) from None
    except Exception:  # cryptography raises UnsupportedAlgorithm and friends
        raise ConfigError(
            field, "is not a usable PEM private key", "give an RSA or EC key in PEM form"
        ) from None


def check_certificate(field: str, pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        raise ConfigError(
            field,
            "is not a PEM certificate",
            "give the certificate uploaded to the app registration (-----BEGIN CERTIFICATE-----)",
        ) from None
