"""``TokenSet``: what a token endpoint granted, as a typed, frozen value (RFC 6749 §5.1).

authlib and the providers speak in dicts; we convert once, at the boundary, and keep the
secrets inside :class:`~mailoauth.secret.Secret`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from mailoauth.secret import Secret

__all__ = ["DEFAULT_LIFETIME", "TokenSet"]

#: Assumed lifetime when a token response has no ``expires_in`` (RFC 6749 makes it
#: optional). An hour is what Google and Microsoft grant; refreshing early is harmless.
DEFAULT_LIFETIME = timedelta(hours=1)


@dataclass(frozen=True, kw_only=True)
class TokenSet:
    access_token: Secret
    expires_at: datetime
    token_type: str = "Bearer"
    #: None when the response carried none (a refresh that did not rotate: keep the old one).
    refresh_token: Secret | None = None
    #: The granted scopes when the server said; else the requested ones.
    scopes: tuple[str, ...] = ()
    #: Who the grant is for, when the server told us (id_token ``email``/``upn`` etc.).
    subject: str | None = None
