"""The relay's server-side TLS context, from ``MAILOAUTH_RELAY_TLS_CERT`` / ``_KEY``.

Used for STARTTLS (RFC 3207) and implicit TLS (RFC 8314 section 3.3) alike; TLS 1.2 is
the minimum (RFC 8996 deprecates 1.0 and 1.1). Every problem with the files is a
:class:`~mailoauth.errors.ConfigError` naming the variable to fix, raised when the relay
starts: a file that cannot be read, one that is not PEM, a key that does not belong to the
certificate, a key protected by a passphrase (the service cannot prompt for one).

:func:`load_server_context` holds those checks for any pair of files and names the fields
it is given: ``mailoauth serve --tls-cert/--tls-key`` (the console's https) uses it too.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from mailoauth.config import RELAY_TLS_CERT, RELAY_TLS_KEY, RelayTls
from mailoauth.errors import ConfigError

__all__ = ["load_server_context", "server_context"]


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
    return load_server_context(
        tls.cert, tls.key, cert_field=RELAY_TLS_CERT, key_field=RELAY_TLS_KEY
    )


def load_server_context(
    cert: Path, key: Path, *, cert_field: str, key_field: str
) -> ssl.SSLContext:
    """A TLS 1.2+ server context for the PEM certificate chain ``cert`` and its private key
    ``key``; every problem is a :class:`ConfigError` naming ``cert_field`` or ``key_field``."""
    _check_readable(cert_field, cert)
    _check_readable(key_field, key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key, password=_no_passphrase)
    except _EncryptedKeyError:
        raise ConfigError(
            key_field,
            f"{key} is protected by a passphrase",
            "store the key without one (e.g. openssl pkey -in KEY -out PLAIN.key), readable "
            "only by the service's user",
        ) from None
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise ConfigError(
                key_field,
                f"{key} is not the private key of the certificate in {cert}",
                f"set {key_field} to the key the certificate was issued for",
            ) from exc
        raise ConfigError(
            cert_field,
            f"cannot load {cert} with the key {key} ({exc.reason or exc})",
            f"{cert_field} must be a PEM certificate (chain, server first) and "
            f"{key_field} its PEM private key",
        ) from exc
    return context
