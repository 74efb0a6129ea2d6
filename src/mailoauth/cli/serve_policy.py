"""Where ``mailoauth serve`` may listen, and the URL browsers and providers reach it at.

The console takes admin passwords and session cookies and the OAuth redirect endpoint
receives authorization codes, so none of it may cross a network in clear text:

1. A listen address that is not loopback needs transport security: either the service's
   own TLS (``--tls-cert`` / ``--tls-key``), or a reverse proxy that terminates TLS, which
   ``--base-url https://…`` declares. (The proxy-to-service hop is then plain http: keep it
   on the same host or a private network.)
2. The redirect URI ``BASE_URL/oauth/callback`` must be https unless its host is loopback
   (RFC 6749 section 3.1.2.1, RFC 8252 section 8.3); ``Settings`` already refuses anything
   else for ``base_url``.
3. With TLS on, the base URL is https: the provider sends the browser back to it, and an
   http URL would reach nothing.
4. Without ``--base-url`` the base URL is the listen address itself, with the scheme the
   service speaks, so the printed redirect URI is the one that works. A wildcard listen
   address (``0.0.0.0``, ``::``) names no host, so it needs ``--base-url``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from mailoauth.config import DEFAULT_BASE_URL, Settings
from mailoauth.errors import ConfigError
from mailoauth.validate import is_loopback_host

__all__ = ["listen_url", "served_settings"]

_TLS_OPTIONS = "--tls-cert and --tls-key (or MAILOAUTH_TLS_CERT and MAILOAUTH_TLS_KEY)"


def listen_url(settings: Settings) -> str:
    """``http(s)://HOST:PORT`` of the listen address (IPv6 hosts in brackets)."""
    scheme = "https" if settings.tls else "http"
    host = settings.listen_host
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{settings.listen_port}"


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def served_settings(settings: Settings) -> Settings:
    """``settings`` as ``serve`` runs them: the rules above checked, the base URL filled in.
    Raises :class:`ConfigError` naming the option to change."""
    host = settings.listen_host
    explicit = settings.base_url != DEFAULT_BASE_URL
    proxied = explicit and settings.base_url.startswith("https://")
    if not is_loopback_host(host) and settings.tls is None and not proxied:
        raise ConfigError(
            "--listen",
            f"{host} is not a loopback address and the service has no TLS: admin passwords, "
            "session cookies and authorization codes would cross the network in clear text",
            f"give {_TLS_OPTIONS}, or terminate TLS in a reverse proxy and set --base-url "
            "https://YOUR-HOST, or bind 127.0.0.1",
        )
    if settings.tls is not None and explicit and not settings.base_url.startswith("https://"):
        raise ConfigError(
            "base_url",
            f"{settings.base_url!r} is http but the service serves https ({_TLS_OPTIONS} "
            "are set): providers would send browsers back to a URL that does not answer",
            "use https://HOST:PORT with the name in the certificate, or leave --base-url out",
        )
    if explicit:
        return settings
    if _is_wildcard(host):
        raise ConfigError(
            "base_url",
            f"is not set and the service listens on every address ({host}), so no URL "
            "says which name browsers and providers use",
            "set --base-url https://HOST:PORT (the name in the certificate) or MAILOAUTH_BASE_URL",
        )
    return replace(settings, base_url=listen_url(settings))
