"""Who is calling: the ``Authorization: Bearer <key>`` of every API request (RFC 6750).

:func:`authenticate_request` checks the key once per request, before the body is read
(:mod:`.calls` calls it first), and leaves the :class:`~mailoauth.store.ApiKey` on the
request. A route states the scope it needs with ``Depends(requires(context, scope))``,
which also declares the bearer scheme in the OpenAPI schema.

No key, or one that is not a valid key: 401 with ``WWW-Authenticate: Bearer`` (plus
``error="invalid_token"`` for a bad one, RFC 6750 section 3.1); a valid key without the
scope: 403 with ``error="insufficient_scope"`` and the scope needed. The key's *name*
goes into the call's log line and to the route as a :class:`Caller`; the key itself goes
nowhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Final

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param

from mailoauth.secret import Secret
from mailoauth.store import ApiKey, Store
from mailoauth.web.api.errors import ApiError
from mailoauth.web.api.keys import ApiScope, authenticate, granted
from mailoauth.web.context import ServiceContext

__all__ = ["Caller", "authenticate_request", "caller_name", "requires"]

_REALM: Final = 'Bearer realm="mailoauth"'
_KEY_ATTRIBUTE: Final = "api_key"

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `mailoauth api-key add NAME --scope read|send|admin`.",
)


@dataclass(frozen=True)
class Caller:
    """The API key a request came with: its name (for log lines) and widest scope."""

    name: str
    scope: ApiScope

    def __str__(self) -> str:
        return f"api key {self.name}"


def authenticate_request(store: Store, request: Request) -> ApiKey:
    """The valid key the request presents, remembered on the request; else the 401.
    Blocks on the store: call it from a worker thread."""
    found: ApiKey | None = getattr(request.state, _KEY_ATTRIBUTE, None)
    if found is not None:
        return found
    scheme, credentials = get_authorization_scheme_param(request.headers.get("Authorization"))
    if scheme.lower() != "bearer" or not credentials:
        raise ApiError(
            401,
            "unauthorized",
            "this needs an API key: send the header 'Authorization: Bearer <key>' (an "
            "admin makes keys with `mailoauth api-key add NAME --scope read|send|admin`)",
            headers={"WWW-Authenticate": _REALM},
        )
    key = authenticate(store, Secret(credentials))
    if key is None or granted(key.scopes) is None:
        raise ApiError(
            401,
            "unauthorized",
            "the API key is not valid (mistyped, or revoked); check it or ask an admin "
            "for a new one (`mailoauth api-key list` shows which keys exist)",
            headers={"WWW-Authenticate": f'{_REALM}, error="invalid_token"'},
        )
    setattr(request.state, _KEY_ATTRIBUTE, key)
    return key


def caller_name(request: Request) -> str | None:
    """The name of the key the request was authenticated with, if it was."""
    key: ApiKey | None = getattr(request.state, _KEY_ATTRIBUTE, None)
    return None if key is None else key.name


def requires(context: ServiceContext, needed: ApiScope) -> Callable[..., Caller]:
    """A FastAPI dependency: the calling key, if it has ``needed`` (or a wider scope);
    else the 401 / 403 answer. Synchronous: FastAPI runs it in a worker thread."""

    def dependency(
        request: Request,
        _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Caller:
        key = authenticate_request(context.store, request)
        scope = granted(key.scopes)
        assert scope is not None  # authenticate_request refuses a key without one
        if scope.rank < needed.rank:
            raise ApiError(
                403,
                "forbidden",
                f"API key {key.name!r} has scope {scope.value!r}, and this needs "
                f"{needed.value!r}; use a key made with --scope {needed.value}",
                headers={
                    "WWW-Authenticate": (
                        f'{_REALM}, error="insufficient_scope", scope="{needed.value}"'
                    )
                },
            )
        return Caller(key.name, scope)

    return dependency
