"""The relay's server-side TLS context, from ``MAILOAUTH_RELAY_TLS_CERT`` / ``_KEY``.

Used for STARTTLS (RFC 3207) and implicit TLS (RFC 8314 section 3.3) alike; TLS 1.2 is
the minimum (RFC 8996 deprecates 1.0 and 1.1). Every problem with the files is a
:class:`~mailoauth.errors.ConfigError` naming the variable to fix, raised when the relay
starts: a file that cannot be read, one that is not PEM, a key that does not belong to the
certificate, a key protected by a passphrase (the service cannot prompt for one).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from mailoauth.config import RELAY_TLS_CERT, RELAY_TLS_KEY, RelayTls
from mailoauth.errors import ConfigError

__all__ = ["server_context"]


class _EncryptedKeyError(Exception):
    """Raised by the password callback: the key needs a passphrase we do not have."""


def _no_passphrase() -> bytes:
    raise _EncryptedKeyError


def _check_readable(variable: str, path: Path) -> None:
    try:
        with path.open("rb") as file:
            file.read(1)
    except OSError as exc:
        raise ConfigError(
            variable,
            f"cannot read {path} ({exc.strerror or exc})",
            "point it at an existing PEM file the service's user may read",
        ) from exc


def server_context(tls: RelayTls) -> ssl.SSLContext:
    """An ``ssl.SSLContext`` serving ``tls.cert`` with ``tls.key``; no client certificates."""
    _check_readable(RELAY_TLS_CERT, tls.cert)
    _check_readable(RELAY_TLS_KEY, tls.key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(tls.cert, tls.key, password=_no_passphrase)
    except _EncryptedKeyError:
        raise ConfigError(
            RELAY_TLS_KEY,
            f"{tls.key} is protected by a passphrase",
            "store the key without one (e.g. openssl pkey -in KEY -out PLAIN.key), readable "
            "only by the service's user",
        ) from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ConfigError(
                RELAY_TLS_KEY,
                f"{tls.key} is not the private key of the certificate in {tls.cert}",
                f"set {RELAY_TLS_KEY} to the key the certificate was issued for",
            ) from exc
        raise ConfigError(
            RELAY_TLS_CERT,
            f"cannot load {tls.cert} with the key {tls.key} ({exc.reason or exc})",
            f"{RELAY_TLS_CERT} must be a PEM certificate (chain, server first) and "
            f"{RELAY_TLS_KEY} its PEM private key",
        ) from exc
    return context
