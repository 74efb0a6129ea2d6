"""The authorization code grant with PKCE: RFC 6749 §4.1, RFC 7636 (S256), RFC 9700 §2.1.

Three steps, so that a person can sit in the middle::

    begin_authorization(...) -> PendingAuthorization   # §4.1.1 + RFC 7636 §4.1-4.3
        (the user opens pending.url, consents; the provider redirects to redirect_uri)
    parse_callback(pending, callback_url) -> code      # §4.1.2, §4.1.2.1, §10.12
    exchange_code(http, provider, pending, code)       # §4.1.3-4.1.4 + RFC 7636 §4.5

``state`` is 256 random bits, checked in constant time; the ``code_verifier`` is 86
characters of the RFC 7636 §4.1 alphabet (512 bits) and travels as a
:class:`~mailoauth.secret.Secret`. A pending authorization lives ``ttl`` (10 minutes, the
code lifetime RFC 6749 §4.1.2 recommends). The URL is built with authlib's
``prepare_grant_uri``, which keeps any query the authorization URL already has; the
callback is parsed here because authlib's parser does not read error responses.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from mailoauth import providers as presets
from mailoauth.errors import ConfigError, ProviderRejected
from mailoauth.models import Mailbox, Provider
from mailoauth.oauth.http import clean_text
from mailoauth.oauth.token import TokenSet
from mailoauth.oauth.token_endpoint import request_token
from mailoauth.secret import Secret

__all__ = [
    "PendingAuthorization",
    "begin_authorization",
    "code_challenge",
    "exchange_code",
    "parse_callback",
]

_START_AGAIN = "start the authorization again"


@dataclass(frozen=True, kw_only=True)
class PendingAuthorization:
    """An authorization request sent to a browser and not answered yet."""

    mailbox: str
    url: str
    state: str
    code_verifier: Secret
    redirect_uri: str
    scopes: tuple[str, ...]
    expires_at: datetime


def code_challenge(verifier: Secret) -> str:
    """``BASE64URL(SHA256(ASCII(code_verifier)))`` (RFC 7636 §4.2, S256)."""
    return str(create_s256_code_challenge(verifier.reveal()))


def begin_authorization(
    provider: Provider,
    mailbox: Mailbox,
    *,
    redirect_uri: str,
    scopes: Sequence[str],
    now: datetime,
    ttl: timedelta = timedelta(minutes=10),
) -> PendingAuthorization:
    """A new authorization request for ``mailbox``: the URL to open and what to check."""
    authorization_url = provider.endpoints().authorization_url
    if authorization_url is None:
        raise ConfigError(
            "authorization_url",
            f"provider {provider.name!r} has no authorization endpoint",
            "set authorization_url, or use a grant that needs no browser",
        )
    state = secrets.token_urlsafe(32)
    verifier = Secret(secrets.token_urlsafe(64))
    url = prepare_grant_uri(
        authorization_url,
        provider.client_id,
        "code",
        redirect_uri=redirect_uri,
        scope=" ".join(scopes),
        state=state,
        code_challenge=code_challenge(verifier),
        code_challenge_method="S256",
        login_hint=mailbox.login,
        **presets.preset_authorize_params(provider.kind),
    )
    return PendingAuthorization(
        mailbox=mailbox.name,
        url=str(url),
        state=state,
        code_verifier=verifier,
        redirect_uri=redirect_uri,
        scopes=tuple(scopes),
        expires_at=now + ttl,
    )


def parse_callback(pending: PendingAuthorization, callback_url: str, *, now: datetime) -> str:
    """The authorization code in the URL the provider redirected the browser to.

    Raises :class:`ProviderRejected` when the request has expired, when the answer is not
    for this request (state), when the user or provider declined, or when no code came.
    """
    if now > pending.expires_at:
        raise ProviderRejected(
            f"the authorization request for mailbox {pending.mailbox!r} expired at "
            f"{pending.expires_at.isoformat(timespec='seconds')}; {_START_AGAIN} and finish "
            "it sooner"
        )
    params = _callback_params(callback_url.strip())
    state = params.get("state")
    if state is None or not hmac.compare_digest(state.encode(), pending.state.encode()):
        raise ProviderRejected(
            "the answer does not belong to this authorization request (state mismatch); "
            "start again",
        )
    error = params.get("error")
    if error is not None:
        error = clean_text(error, limit=64)
        text = clean_text(params.get("error_description", ""))
        if error == "access_denied":
            raise ProviderRejected(
                "consent was declined at the provider"
                + (f" ({text})" if text else "")
                + f"; {_START_AGAIN} and accept the requested access",
                error=error,
                description=text,
            )
        raise ProviderRejected(
            f"the provider refused the authorization: {error}"
            + (f" ({text})" if text else "")
            + f"; check the provider's settings, then {_START_AGAIN}",
            error=error,
            description=text,
        )
    code = params.get("code")
    if not code:
        raise ProviderRejected(
            f"the provider's answer has no authorization code; {_START_AGAIN}",
        )
    return code


def _callback_params(url: str) -> dict[str, str]:
    """The query (or, for ``response_mode=fragment``, fragment) of a redirect URL.

    A parameter given twice makes the answer ambiguous, so it counts as forged.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ProviderRejected(
            "that is not the URL the provider redirected to; paste the whole address from "
            "the browser's address bar, starting with http:// or https://",
        )
    raw = parse_qs(parts.query, keep_blank_values=True)
    if not raw:
        raw = parse_qs(parts.fragment, keep_blank_values=True)
    if any(len(values) > 1 for values in raw.values()):
        raise ProviderRejected(
            "the answer repeats a parameter, so it cannot be trusted; start again",
        )
    return {name: values[0] for name, values in raw.items()}


async def exchange_code(
    http: httpx.AsyncClient,
    provider: Provider,
    pending: PendingAuthorization,
    code: str,
    *,
    now: datetime,
) -> TokenSet:
    """Trade the authorization code for tokens (RFC 6749 §4.1.3, RFC 7636 §4.5)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": pending.redirect_uri,
        "code_verifier": pending.code_verifier.reveal(),
    }
    return await request_token(http, provider, form, scopes=pending.scopes, now=now)
