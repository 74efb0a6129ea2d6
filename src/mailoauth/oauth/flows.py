"""One async function per OAuth2 grant; each returns a typed TokenSet and stores nothing.

Grants defined here, each one POST to the token endpoint with the provider's client
authentication (:mod:`.client_auth`) and the answer parsed by :mod:`.token_endpoint`:

==========================  ================================================================
:func:`refresh`             RFC 6749 §6 (refresh_token)
:func:`password_grant`      RFC 6749 §4.3 (resource-owner password credentials)
:func:`client_credentials`  RFC 6749 §4.4 (app-only)
:func:`jwt_bearer`          RFC 7523 §2.1 and §3 (Google service accounts with domain-wide
                            delegation: iss = the account, sub = the impersonated user)
==========================  ================================================================

The grants that need a person live in their own modules and are re-exported here, so
callers find every grant in one place: :mod:`.authorization_code` (RFC 6749 §4.1 + PKCE),
:mod:`.device_code` (RFC 8628) and :mod:`.revocation` (RFC 7009).

Every function takes the ``httpx.AsyncClient`` the caller owns (and closes) and the time
``now`` as a parameter; none reads a clock or keeps state.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

import httpx

from mailoauth.errors import ConfigError
from mailoauth.models import Mailbox, Provider
from mailoauth.oauth.signing import sign_jwt, signing_key
from mailoauth.oauth.token import TokenSet
from mailoauth.oauth.token_endpoint import request_token
from mailoauth.providers import ClientAuthMethod
from mailoauth.secret import Secret

__all__ = [
    "JWT_BEARER_GRANT",
    "SERVICE_ACCOUNT_ASSERTION_LIFETIME",
    "client_credentials",
    "jwt_bearer",
    "password_grant",
    "refresh",
    "service_account_assertion",
]

JWT_BEARER_GRANT: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: Google's maximum lifetime for a service-account assertion.
SERVICE_ACCOUNT_ASSERTION_LIFETIME: Final = timedelta(hours=1)


def _with_scope(form: dict[str, str], scopes: Sequence[str]) -> dict[str, str]:
    return {**form, "scope": " ".join(scopes)} if scopes else form


async def refresh(
    http: httpx.AsyncClient,
    provider: Provider,
    refresh_token: Secret,
    scopes: Sequence[str],
    *,
    now: datetime,
) -> TokenSet:
    """New tokens for a refresh token (RFC 6749 §6). ``refresh_token`` of the result is
    None when the provider did not rotate it: keep the old one."""
    form = _with_scope(
        {"grant_type": "refresh_token", "refresh_token": refresh_token.reveal()}, scopes
    )
    return await request_token(http, provider, form, scopes=scopes, now=now)


async def password_grant(
    http: httpx.AsyncClient,
    provider: Provider,
    mailbox: Mailbox,
    scopes: Sequence[str],
    *,
    now: datetime,
) -> TokenSet:
    """Tokens for the mailbox's user name and password (RFC 6749 §4.3)."""
    if mailbox.password is None:
        raise ConfigError(
            "password", "is required for grant = 'password'", "set the mailbox's password"
        )
    form = {
        "grant_type": "password",
        "username": mailbox.username or mailbox.login,
        "password": mailbox.password.reveal(),
    }
    return await request_token(http, provider, _with_scope(form, scopes), scopes=scopes, now=now)


async def client_credentials(
    http: httpx.AsyncClient, provider: Provider, scopes: Sequence[str], *, now: datetime
) -> TokenSet:
    """App-only tokens for the client itself (RFC 6749 §4.4)."""
    form = _with_scope({"grant_type": "client_credentials"}, scopes)
    return await request_token(http, provider, form, scopes=scopes, now=now)


def service_account_assertion(
    mailbox: Mailbox, token_url: str, scopes: Sequence[str], now: datetime
) -> Secret:
    """The RFC 7523 §2.1 assertion of a Google service account acting as ``mailbox.subject``:
    RS256 (or the EC algorithm of its key), ``kid`` = the private key id, iss = the
    account's e-mail, sub = the user, aud = the token endpoint, the scopes, iat, and
    exp = iat + 1 hour (Google's maximum)."""
    if mailbox.service_account_key is None or mailbox.service_account_email is None:
        raise ConfigError(
            "service_account_key",
            "is required for grant = 'service_account'",
            'import the JSON key: service_account_json = "file:/path/key.json"',
        )
    key, alg = signing_key("service_account_key", mailbox.service_account_key)
    header = {"kid": mailbox.service_account_key_id} if mailbox.service_account_key_id else {}
    issued = int(now.timestamp())
    claims: dict[str, object] = {
        "iss": mailbox.service_account_email,
        "sub": mailbox.subject or mailbox.login,
        "aud": token_url,
        "scope": " ".join(scopes),
        "iat": issued,
        "exp": issued + int(SERVICE_ACCOUNT_ASSERTION_LIFETIME.total_seconds()),
    }
    return Secret(sign_jwt(key, alg, header, claims))


async def jwt_bearer(
    http: httpx.AsyncClient,
    provider: Provider,
    mailbox: Mailbox,
    scopes: Sequence[str],
    *,
    now: datetime,
) -> TokenSet:
    """Tokens for a service account impersonating the mailbox's user (RFC 7523 §2.1).

    Google takes no client authentication for this grant, so none is sent when the
    provider's ``client_auth`` is ``none``; any other method is applied as configured.
    """
    token_url = provider.endpoints().token_url
    assertion = service_account_assertion(mailbox, token_url, scopes, now)
    form = {"grant_type": JWT_BEARER_GRANT, "assertion": assertion.reveal()}
    return await request_token(
        http,
        provider,
        form,
        scopes=scopes,
        now=now,
        authenticate_client=provider.client_auth is not ClientAuthMethod.NONE,
    )
