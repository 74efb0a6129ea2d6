"""The token endpoint (RFC 6749 §3.2): send one grant's form, parse the answer (§5.1).

:func:`parse_token_response` is the boundary where a provider's dict becomes our typed
:class:`~mailoauth.oauth.token.TokenSet`. It is total over JSON: any object either gives
a TokenSet or raises an :class:`~mailoauth.errors.OAuthError` (a property test holds it
to that). It is lenient where providers differ and RFC 6749 allows it:

* ``expires_in`` (§5.1, RECOMMENDED): missing → :data:`~mailoauth.oauth.token.DEFAULT_LIFETIME`;
  a number or a numeric string (some servers quote it); capped at :data:`MAX_LIFETIME`.
* ``token_type`` (§7.1): case-insensitive; only ``Bearer`` (RFC 6750) is usable for
  XOAUTH2 / OAUTHBEARER, anything else is refused. A missing one is taken as Bearer.
* ``scope`` (§3.3, §5.1): missing or empty → the requested scopes; a JSON list is
  accepted as well as the space-separated string.
* ``refresh_token``: absent → ``None`` (a refresh that did not rotate; keep the old one).
* ``id_token``: when present, its unverified ``email`` / ``preferred_username`` / ``upn``
  claim names who authorized (display only, never used to decide anything).

A missing or unusable ``access_token`` is a malformed answer: ProviderUnavailable.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from mailoauth.errors import ProviderRejected, ProviderUnavailable
from mailoauth.models import Provider
from mailoauth.oauth.client_auth import authenticate
from mailoauth.oauth.http import clean_text, post_form
from mailoauth.oauth.token import DEFAULT_LIFETIME, TokenSet
from mailoauth.secret import Secret

__all__ = ["MAX_LIFETIME", "parse_token_response", "request_token"]

#: Longest lifetime believed; a longer ``expires_in`` only makes us refresh early.
MAX_LIFETIME: Final = timedelta(days=366)
_SUBJECT_CLAIMS: Final = ("email", "preferred_username", "upn")


def parse_token_response(
    data: Mapping[str, Any],
    *,
    now: datetime,
    requested_scopes: Sequence[str],
    endpoint: str = "the token endpoint",
) -> TokenSet:
    """The TokenSet in a successful token response (RFC 6749 §5.1) received at ``now``."""

    def malformed(what: str) -> ProviderUnavailable:
        return ProviderUnavailable(
            f"{endpoint} answered a malformed token response ({what}); try again later, and "
            "report it to the provider if it persists"
        )

    access = data.get("access_token")
    if not isinstance(access, str) or not access or _has_space_or_control(access):
        raise malformed("no usable access_token")
    token_type = data.get("token_type")
    if token_type is None:
        token_type = "Bearer"
    if not isinstance(token_type, str):
        raise malformed("token_type is not a string")
    if token_type.lower() != "bearer":
        shown = clean_text(token_type, limit=40)
        raise ProviderRejected(
            f"{endpoint} issued a {shown!r} token, but mail servers take Bearer tokens only; "
            "configure the client at the provider to issue Bearer tokens (no DPoP / MAC)"
        )
    lifetime = _lifetime(data.get("expires_in"))
    if lifetime is None:
        raise malformed("expires_in is not a number of seconds")
    scopes = _scopes(data.get("scope"), requested_scopes)
    if scopes is None:
        raise malformed("scope is neither a string nor a list of strings")
    refresh = data.get("refresh_token")
    if refresh is not None and not isinstance(refresh, str):
        raise malformed("refresh_token is not a string")
    return TokenSet(
        access_token=Secret(access),
        expires_at=now + lifetime,
        token_type="Bearer",
        refresh_token=Secret(refresh) if refresh else None,
        scopes=scopes,
        subject=_subject(data.get("id_token")),
    )


async def request_token(
    http: httpx.AsyncClient,
    provider: Provider,
    form: dict[str, str],
    *,
    scopes: Sequence[str],
    now: datetime,
    authenticate_client: bool = True,
) -> TokenSet:
    """POST one grant's ``form`` with the client's authentication (unless
    ``authenticate_client`` is false); the granted TokenSet."""
    token_url = provider.endpoints().token_url
    headers: dict[str, str] = {}
    if authenticate_client:
        form, headers = authenticate(provider, token_url, form, now)
    data = await post_form(http, token_url, form, headers, now=now)
    host = urlsplit(token_url).netloc or token_url
    return parse_token_response(
        data, now=now, requested_scopes=scopes, endpoint=f"the token endpoint {host}"
    )


def _has_space_or_control(text: str) -> bool:
    return any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in text)


def parse_seconds(value: object) -> float | None:
    """A JSON duration (``expires_in``, ``interval``): a number or numeric string, finite
    and not negative; None for anything else."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, str):
            seconds = float(value.strip())
        elif isinstance(value, int | float):
            seconds = float(value)
        else:
            return None
    except (ValueError, OverflowError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _lifetime(value: object) -> timedelta | None:
    if value is None or value == "":
        return DEFAULT_LIFETIME
    seconds = parse_seconds(value)
    if seconds is None:
        return None
    if seconds >= MAX_LIFETIME.total_seconds():
        return MAX_LIFETIME
    return timedelta(seconds=seconds)


def _scopes(value: object, requested: Sequence[str]) -> tuple[str, ...] | None:
    if isinstance(value, str):
        granted = tuple(value.split())
    elif isinstance(value, list) and all(isinstance(item, str) for item in value):
        granted = tuple(part for item in value for part in item.split())
    elif value is None:
        granted = ()
    else:
        return None
    return granted or tuple(requested)


def _subject(id_token: object) -> str | None:
    """Who authorized, from an id_token's payload; None when it does not say."""
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return None
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        return None
    if not isinstance(claims, dict):
        return None
    for name in _SUBJECT_CLAIMS:
        value = claims.get(name)
        if isinstance(value, str) and value.strip() and not _has_space_or_control(value):
            return value[:320]
    return None
