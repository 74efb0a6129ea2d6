"""Service settings: where the data lives, which database, where the service listens.

Loaded once, from the environment plus explicit overrides (CLI flags), and passed down.
No module-level mutable state: every component receives the ``Settings`` it runs with.

============================  ===========================================================
environment variable          meaning (default)
============================  ===========================================================
``MAILOAUTH_HOME``            data directory (``$XDG_DATA_HOME/mailoauth``, else
                              ``~/.local/share/mailoauth``)
``MAILOAUTH_DATABASE_URL``    SQLAlchemy URL (``sqlite:///$MAILOAUTH_HOME/mailoauth.db``);
                              ``postgresql://user@host/db`` for several nodes
``MAILOAUTH_SECRET_KEY``      the key that encrypts stored secrets (else the key file)
``MAILOAUTH_KEY_FILE``        key file path (``$MAILOAUTH_HOME/secret.key``, made on first run)
``MAILOAUTH_BASE_URL``        public URL of the service (``http://127.0.0.1:8025``; ``serve``
                              fills in its listen address); the default redirect URI is
                              ``BASE_URL/oauth/callback``
``MAILOAUTH_LISTEN``          ``HOST:PORT`` the service binds (``127.0.0.1:8025``)
``MAILOAUTH_TLS_CERT``        PEM certificate (chain) for ``mailoauth serve``'s https; with
``MAILOAUTH_TLS_KEY``         its PEM private key: both or neither (none: plain http)
``MAILOAUTH_CA_FILE``         a PEM file of extra CAs to trust (beside the system's) for
                              mail servers, mail APIs and webhooks with a private CA
``MAILOAUTH_RELAY_SMTP``      ``HOST:PORT`` of the SMTP relay for password-only apps
                              (``127.0.0.1:2525``); empty or ``off``: no relay. Loopback
                              only unless the relay has a TLS certificate
``MAILOAUTH_RELAY_TLS_CERT``  PEM certificate (chain) of the relay; with
``MAILOAUTH_RELAY_TLS_KEY``   its PEM private key: both or neither (none: no TLS)
``MAILOAUTH_RELAY_SMTP_TLS``  ``starttls`` (RFC 3207; the default with a certificate) or
                              ``implicit`` (TLS from the first byte, RFC 8314, port 465 style)
``MAILOAUTH_RELAY_IMAP``      ``HOST:PORT`` of the IMAP relay (``127.0.0.1:1143``), and
``MAILOAUTH_RELAY_POP3``      of the POP3 relay (``127.0.0.1:1110``); ``off`` and the
                              loopback rule as for SMTP
``MAILOAUTH_RELAY_IMAP_TLS``  ``starttls`` (STARTTLS / STLS, RFC 2595; the default with a
``MAILOAUTH_RELAY_POP3_TLS``  certificate) or ``implicit`` (993 / 995 style, RFC 8314)
``MAILOAUTH_RELAY_LOGIN_CACHE`` seconds a successful SMTP relay login is kept in memory
                              (``5``; ``0``: every login is checked against the store)
============================  ===========================================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from mailoauth.errors import ConfigError
from mailoauth.secret import Secret
from mailoauth.validate import check_redirect_uri, is_loopback_host

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_LISTEN",
    "DEFAULT_RELAY_IMAP",
    "DEFAULT_RELAY_POP3",
    "DEFAULT_RELAY_SMTP",
    "RELAY_IMAP_TLS",
    "RELAY_POP3_TLS",
    "RELAY_SMTP_TLS",
    "RELAY_TLS_CERT",
    "RELAY_TLS_KEY",
    "TLS_CERT",
    "TLS_KEY",
    "RelayTls",
    "ServiceTls",
    "Settings",
    "parse_listen",
    "parse_relay",
    "parse_relay_tls",
    "parse_seconds",
    "parse_service_tls",
]

DEFAULT_BASE_URL = "http://127.0.0.1:8025"
DEFAULT_LISTEN = "127.0.0.1:8025"
DEFAULT_RELAY_SMTP = "127.0.0.1:2525"
DEFAULT_RELAY_IMAP = "127.0.0.1:1143"
DEFAULT_RELAY_POP3 = "127.0.0.1:1110"


def default_data_dir(env: Mapping[str, str]) -> Path:
    if home := env.get("MAILOAUTH_HOME"):
        return Path(home).expanduser()
    xdg = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME", "~")) / ".local" / "share")
    return Path(xdg).expanduser() / "mailoauth"


def parse_listen(field: str, value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(field, f"{value!r} is not HOST:PORT", "e.g. 127.0.0.1:8025")
    return host, int(port)


def parse_seconds(field: str, value: str, *, most: float) -> float:
    """A number of seconds from 0 to ``most``."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= most:  # also refuses nan
        raise ConfigError(field, f"{value!r} is not a number of seconds", f"use 0 to {most:g}")
    return seconds


def parse_relay(field: str, value: str, *, tls: bool = False) -> tuple[str, int] | None:
    """A relay listener's ``HOST:PORT``, or None for "" / "off". Without TLS (``tls``:
    a certificate is configured) only a loopback host is allowed: AUTH PLAIN/LOGIN would
    put the passwords on the network in the clear (RFC 4954 section 4)."""
    if value.strip().lower() in ("", "off"):
        return None
    host, port = parse_listen(field, value)
    if not tls and not is_loopback_host(host):
        raise ConfigError(
            field,
            f"{host} is not a loopback address, and the relay has no TLS certificate: "
            "passwords would cross the network in the clear",
            f"set {RELAY_TLS_CERT} and {RELAY_TLS_KEY} (docs/relay.md), or bind 127.0.0.1 "
            "(or ::1) and run the application on the same host",
        )
    return host, port


RELAY_TLS_CERT: Final = "MAILOAUTH_RELAY_TLS_CERT"
RELAY_TLS_KEY: Final = "MAILOAUTH_RELAY_TLS_KEY"
RELAY_SMTP_TLS: Final = "MAILOAUTH_RELAY_SMTP_TLS"
RELAY_IMAP_TLS: Final = "MAILOAUTH_RELAY_IMAP_TLS"
RELAY_POP3_TLS: Final = "MAILOAUTH_RELAY_POP3_TLS"


@dataclass(frozen=True)
class RelayTls:
    """The relay's TLS: PEM certificate chain and private key paths, and whether SMTP
    starts in the clear and upgrades with STARTTLS (RFC 3207) or is TLS from the first
    byte (``implicit``, RFC 8314 section 3.3). The files are read when the relay starts
    (:func:`mailoauth.relay.tls.server_context`)."""

    cert: Path
    key: Path
    implicit: bool = False

    @property
    def mode(self) -> str:
        return "implicit" if self.implicit else "starttls"


def parse_relay_tls(env: Mapping[str, str], mode_variable: str = RELAY_SMTP_TLS) -> RelayTls | None:
    """``MAILOAUTH_RELAY_TLS_CERT`` / ``_KEY`` (both or neither) and the listener's mode
    variable, ``MAILOAUTH_RELAY_SMTP_TLS`` by default (``_IMAP_TLS``, ``_POP3_TLS``):
    ``starttls``, the default, or ``implicit``."""
    cert, key = env.get(RELAY_TLS_CERT, "").strip(), env.get(RELAY_TLS_KEY, "").strip()
    mode = env.get(mode_variable, "").strip().lower()
    if mode not in ("", "starttls", "implicit"):
        raise ConfigError(mode_variable, f"{mode!r} is not a TLS mode", "use starttls or implicit")
    _both_or_neither(cert, key, RELAY_TLS_CERT, RELAY_TLS_KEY)
    if not cert:
        if mode:
            raise ConfigError(
                mode_variable,
                f"is {mode} but the relay has no certificate",
                f"set {RELAY_TLS_CERT} and {RELAY_TLS_KEY}, or unset {mode_variable}",
            )
        return None
    return RelayTls(Path(cert).expanduser(), Path(key).expanduser(), implicit=mode == "implicit")


def _both_or_neither(cert: str, key: str, cert_field: str, key_field: str) -> None:
    if bool(cert) != bool(key):
        have, missing = (cert_field, key_field) if cert else (key_field, cert_field)
        raise ConfigError(
            missing,
            f"is not set but {have} is",
            "set both (the PEM certificate chain and its private key), or neither",
        )


TLS_CERT: Final = "MAILOAUTH_TLS_CERT"
TLS_KEY: Final = "MAILOAUTH_TLS_KEY"


@dataclass(frozen=True)
class ServiceTls:
    """``mailoauth serve``'s https: PEM certificate chain and private key paths, from
    ``--tls-cert`` / ``--tls-key`` or ``MAILOAUTH_TLS_CERT`` / ``_KEY``. The files are read
    when the service starts (:func:`mailoauth.relay.tls.load_server_context`)."""

    cert: Path
    key: Path


def parse_service_tls(cert: str | None, key: str | None) -> ServiceTls | None:
    """The certificate and key paths (both or neither; errors name ``tls_cert`` /
    ``tls_key``, like the options ``--tls-cert`` / ``--tls-key``)."""
    cert, key = (cert or "").strip(), (key or "").strip()
    _both_or_neither(cert, key, "tls_cert", "tls_key")
    return ServiceTls(Path(cert).expanduser(), Path(key).expanduser()) if cert else None


def _check_base_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.query or parts.fragment:
        raise ConfigError("base_url", f"{value!r} has a query or fragment", "remove it")
    check_redirect_uri("base_url", value, example="")
    return value.rstrip("/")


@dataclass(frozen=True, kw_only=True)
class Settings:
    data_dir: Path
    database_url: str
    key_file: Path
    secret_key: Secret | None = None
    base_url: str = DEFAULT_BASE_URL
    listen_host: str = "127.0.0.1"
    listen_port: int = 8025
    ca_file: str | None = None
    relay_smtp: tuple[str, int] | None = ("127.0.0.1", 2525)
    relay_tls: RelayTls | None = None
    tls: ServiceTls | None = None
    relay_imap: tuple[str, int] | None = ("127.0.0.1", 1143)
    relay_pop3: tuple[str, int] | None = ("127.0.0.1", 1110)
    relay_imap_tls: RelayTls | None = None
    relay_pop3_tls: RelayTls | None = None
    relay_login_cache: float = 5.0

    @classmethod
    def load(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        data_dir: Path | None = None,
        listen: str | None = None,
        base_url: str | None = None,
    ) -> Settings:
        """Settings from ``env`` (default: the process environment); arguments win."""
        env = os.environ if env is None else env
        data_dir = data_dir or default_data_dir(env)
        key = env.get("MAILOAUTH_SECRET_KEY")
        relay_tls = parse_relay_tls(env)
        imap_tls = parse_relay_tls(env, RELAY_IMAP_TLS)
        pop3_tls = parse_relay_tls(env, RELAY_POP3_TLS)
        settings = cls(
            data_dir=data_dir,
            database_url=env.get("MAILOAUTH_DATABASE_URL")
            or f"sqlite:///{data_dir / 'mailoauth.db'}",
            key_file=Path(env.get("MAILOAUTH_KEY_FILE") or data_dir / "secret.key").expanduser(),
            secret_key=Secret(key) if key else None,
            ca_file=env.get("MAILOAUTH_CA_FILE") or None,
            relay_smtp=parse_relay(
                "relay_smtp",
                env.get("MAILOAUTH_RELAY_SMTP", DEFAULT_RELAY_SMTP),
                tls=relay_tls is not None,
            ),
            relay_tls=relay_tls,
            tls=parse_service_tls(env.get(TLS_CERT), env.get(TLS_KEY)),
            relay_imap=parse_relay(
                "relay_imap",
                env.get("MAILOAUTH_RELAY_IMAP", DEFAULT_RELAY_IMAP),
                tls=imap_tls is not None,
            ),
            relay_pop3=parse_relay(
                "relay_pop3",
                env.get("MAILOAUTH_RELAY_POP3", DEFAULT_RELAY_POP3),
                tls=pop3_tls is not None,
            ),
            relay_imap_tls=imap_tls,
            relay_pop3_tls=pop3_tls,
            relay_login_cache=parse_seconds(
                "relay_login_cache", env.get("MAILOAUTH_RELAY_LOGIN_CACHE", "5"), most=300
            ),
        )
        return settings.override(
            listen=listen or env.get("MAILOAUTH_LISTEN") or DEFAULT_LISTEN,
            base_url=base_url or env.get("MAILOAUTH_BASE_URL") or DEFAULT_BASE_URL,
        )

    def override(
        self,
        *,
        listen: str | None = None,
        base_url: str | None = None,
        tls_cert: str | None = None,
        tls_key: str | None = None,
    ) -> Settings:
        """A copy with a new listen address, base URL and/or TLS file, each validated; a
        TLS file given alone is paired with the other one already set."""
        settings = self
        if tls_cert is not None or tls_key is not None:
            cert = tls_cert or (str(self.tls.cert) if self.tls else None)
            key = tls_key or (str(self.tls.key) if self.tls else None)
            settings = replace(settings, tls=parse_service_tls(cert, key))
        if listen is not None:
            host, port = parse_listen("listen", listen)
            settings = replace(settings, listen_host=host, listen_port=port)
        if base_url is not None:
            settings = replace(settings, base_url=_check_base_url(base_url))
        return settings

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
