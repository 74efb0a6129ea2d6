"""Token revocation (RFC 7009).

:func:`revoke` POSTs ``token`` and ``token_type_hint`` (§2.1) with the client's
authentication to the provider's revocation endpoint. Any 2xx is success whatever the
body (§2.2); so is ``invalid_token`` (Google answers it for a token that is already
revoked or expired: nothing is left to revoke). Other errors are classified like every
token request (:mod:`mailoauth.oauth.http`), including 503 with ``Retry-After`` (§2.2.1).

Entra ID (Microsoft) has no RFC 7009 endpoint: :func:`revoke` then returns False and the
caller tells the user where to remove the app's access instead.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from mailoauth.errors import ProviderRejected
from mailoauth.models import Provider
from mailoauth.oauth.client_auth import authenticate
from mailoauth.oauth.http import post_form
from mailoauth.secret import Secret

__all__ = ["revoke"]


async def revoke(
    http: httpx.AsyncClient,
    provider: Provider,
    token: Secret,
    *,
    token_type_hint: str,
    now: datetime | None = None,
) -> bool:
    """Revoke ``token`` at the provider: True when revoked, False when it cannot revoke.

    ``now`` dates a ``private_key_jwt`` assertion and measures ``Retry-After``; revocation
    happens at once, so it defaults to the current time.
    """
    endpoints = provider.endpoints()
    if endpoints.revocation_url is None:
        return False
    at = now if now is not None else datetime.now(UTC)
    form = {"token": token.reveal(), "token_type_hint": token_type_hint}
    form, headers = authenticate(provider, endpoints.token_url, form, at)
    try:
        await post_form(
            http,
            endpoints.revocation_url,
            form,
            headers,
            endpoint="revocation endpoint",
            now=at,
            expect_json=False,
        )
    except ProviderRejected as err:
        if err.error != "invalid_token":
            raise
    return True
