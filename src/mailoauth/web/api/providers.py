"""``/api/v1/providers``: list, read, create or replace (PUT), remove.

A PUT body is the provider's table of a ``mailoauth apply`` file (:mod:`.bodies`);
answers never hold a secret (:mod:`.views`). Changing a provider re-checks the mailboxes
that use it, in the same transaction (the store's rule): a change that would break one
is refused, naming it.
"""

# No ``from __future__ import annotations``: FastAPI reads the route signatures at run
# time, and their dependencies (``read``, ``admin``) are local to the factory.

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from mailoauth.errors import NotFoundError
from mailoauth.models import Provider
from mailoauth.store import Change
from mailoauth.web.api.auth import Caller, requires
from mailoauth.web.api.bodies import provider_from_body
from mailoauth.web.api.calls import group_router
from mailoauth.web.api.errors import ERROR_RESPONSES
from mailoauth.web.api.keys import ApiScope
from mailoauth.web.api.schemas import ProviderBody, ProviderSaved, ProviderView
from mailoauth.web.api.views import provider_view
from mailoauth.web.context import ServiceContext

__all__ = ["provider_routes"]

log = logging.getLogger("mailoauth.api")

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: ERROR_RESPONSES["default"]}
_CONFLICT: dict[int | str, dict[str, Any]] = {409: ERROR_RESPONSES["default"]}
_CREATED: dict[int | str, dict[str, Any]] = {
    201: {"model": ProviderSaved, "description": "Created"}
}


def provider_routes(context: ServiceContext) -> APIRouter:
    router = group_router(context, "providers")
    store = context.store
    read = Annotated[Caller, Depends(requires(context, ApiScope.READ))]
    admin = Annotated[Caller, Depends(requires(context, ApiScope.ADMIN))]

    def view(provider: Provider) -> dict[str, Any]:
        return provider_view(provider, context.settings.base_url)

    @router.get("/providers", response_model=list[ProviderView])  # type: ignore[valid-type]
    def list_providers(caller: read) -> list[dict[str, Any]]:
        """Every provider (app registration), sorted by name."""
        return [view(p) for p in store.list_providers()]

    @router.get("/providers/{name}", response_model=ProviderView, responses=_NOT_FOUND)
    def get_provider(name: str, caller: read) -> dict[str, Any]:
        """One provider, with its endpoints and the redirect URI to register."""
        return view(store.get_provider(name))

    @router.put("/providers/{name}", response_model=ProviderSaved, responses=_CREATED | _CONFLICT)
    def put_provider(
        name: str, body: ProviderBody, caller: admin, response: Response
    ) -> dict[str, Any]:
        """Create or replace a provider. Secrets left out keep their stored values."""
        try:
            stored: Provider | None = store.get_provider(name)
        except NotFoundError:
            stored = None
        change = store.put_provider(provider_from_body(name, body, stored))
        if change is Change.CREATED:
            response.status_code = 201
        log.info("%s: provider %s %s", caller, name, change.value)
        return {"change": change, "provider": view(store.get_provider(name))}

    @router.delete(
        "/providers/{name}",
        status_code=204,
        response_class=Response,
        responses=_NOT_FOUND | _CONFLICT,
    )
    def delete_provider(name: str, caller: admin) -> None:
        """Remove a provider that no mailbox uses (409 names the mailboxes that do)."""
        store.delete_provider(name)
        log.info("%s: provider %s removed", caller, name)

    return router
