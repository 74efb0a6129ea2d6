"""Whom mailoauth's outgoing connections trust, and its HTTP client.

:func:`tls_context` is the verifying client context of every mail connection (the
system's CAs plus ``MAILOAUTH_CA_FILE``), :func:`http_client` the HTTP client of token
endpoints, Graph, Gmail and webhooks with the same trust. Apart from the SMTP client
(:mod:`.connect`), so that what only needs HTTP — ``mailoauth token``, behind msmtp's
``passwordeval`` for every message — does not load aiosmtplib.
"""

from __future__ import annotations

import functools
import os
import ssl

import httpx

from mailoauth import __version__
from mailoauth.errors import ConfigError

__all__ = ["http_client", "tls_context"]


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A verifying client context that trusts the system's CAs and ``ca_file`` (a private
    CA of the mail server), shared by every connection with the same CA file.

    Building one loads the system CA store (~25 ms), too much to pay per message; the
    cache key includes the file's mtime, so a replaced CA file is picked up."""
    try:
        mtime = os.stat(ca_file).st_mtime_ns if ca_file is not None else 0
        return _cached_context(ca_file, mtime)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            "ca_file", f"{ca_file!r} cannot be read ({exc})", "give a PEM CA file"
        ) from None


def http_client(ca_file: str | None = None) -> httpx.AsyncClient:
    """The HTTP client of a mailoauth process (token endpoints, Graph, Gmail, webhooks):
    the same trust as mail connections, no redirects (a redirect must never carry a token
    or a message somewhere the configuration does not name), bounded timeouts."""
    return httpx.AsyncClient(
        timeout=httpx.Timeout(30.0, connect=5.0),
        headers={"User-Agent": f"mailoauth/{__version__}"},
        follow_redirects=False,
        verify=tls_context(ca_file),
    )


@functools.lru_cache(maxsize=16)
def _cached_context(ca_file: str | None, mtime: int) -> ssl.SSLContext:
    del mtime  # part of the cache key only
    context = ssl.create_default_context()  # the system's CAs ...
    if ca_file is not None:
        context.load_verify_locations(cafile=ca_file)  # ... and the extra one
    return context
