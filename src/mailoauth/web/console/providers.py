"""The provider pages: list, add, edit, delete (``/providers``).

::

    GET  /providers                  every provider, the redirect URI to register
    GET  /providers/_new?kind=K      the form for a new one (K: google, microsoft, generic)
    POST /providers/_new             create it
    GET  /providers/{name}/edit      the form of a stored one
    POST /providers/{name}/edit      save it
    POST /providers/{name}/delete    remove it (refused while a mailbox uses it)

(``_new`` cannot be a provider's name: names start with a letter or a digit.)

The form shows Google's and Microsoft's preset endpoints filled in and read-only (the
script follows the tenant and cloud), the exact redirect URI with a copy button and where
to register the app. Secrets are write-only (:mod:`.fields`). A refused form comes back
with the words next to the field and what was typed, secrets excepted; a saved change that
invalidates mailboxes' grants says so (:mod:`.regrant`). Every change is audited by field
name, never by value.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from mailoauth.errors import ConfigError, InUseError
from mailoauth.models import Provider
from mailoauth.providers import (
    MICROSOFT_CLOUDS,
    ClientAuthMethod,
    ProviderKind,
    google_endpoints,
    microsoft_endpoints,
)
from mailoauth.records import public_view
from mailoauth.store import WebSession
from mailoauth.web.console.audit import audit
from mailoauth.web.console.dashboard import provider_row
from mailoauth.web.console.fields import (
    PROVIDER_SECRETS,
    FormErrors,
    entered,
    form_errors,
    provider_values,
)
from mailoauth.web.console.forms import form_of
from mailoauth.web.console.render import flash, redirect, render
from mailoauth.web.console.routing import ConsoleRoute
from mailoauth.web.console.runtime import forget_tokens
from mailoauth.web.console.saving import Saved, save_provider
from mailoauth.web.console.sessions import require_admin
from mailoauth.web.console.state import console_of

__all__ = ["router"]

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
Admin = Annotated[WebSession, Depends(require_admin)]
Form = Annotated[FormData, Depends(form_of)]

KINDS: Final = (
    (ProviderKind.GOOGLE.value, "Google (Gmail, Workspace)"),
    (ProviderKind.MICROSOFT.value, "Microsoft (Exchange Online, Outlook.com)"),
    (ProviderKind.GENERIC.value, "Other OAuth2 server"),
)
AUTH_METHODS: Final = (
    (ClientAuthMethod.CLIENT_SECRET_POST.value, "Client secret, in the request body (default)"),
    (ClientAuthMethod.CLIENT_SECRET_BASIC.value, "Client secret, HTTP Basic"),
    (ClientAuthMethod.PRIVATE_KEY_JWT.value, "Private key (signed JWT)"),
    (ClientAuthMethod.NONE.value, "None (public client)"),
)
CLOUDS: Final = (
    ("global", "Global (login.microsoftonline.com)"),
    ("usgov", "US Government (GCC High, DoD)"),
    ("china", "China (21Vianet)"),
)
ENDPOINT_LABELS: Final = (
    ("authorization_url", "Authorization URL"),
    ("token_url", "Token URL"),
    ("device_url", "Device authorization URL"),
    ("revocation_url", "Revocation URL"),
)
_TENANT: Final = "{tenant}"


def _microsoft_presets() -> dict[str, dict[str, Any]]:
    """Every cloud's endpoints with ``{tenant}`` left for the page's script to fill."""
    return {cloud: public_view(microsoft_endpoints(_TENANT, cloud)) for cloud in MICROSOFT_CLOUDS}


def _form_page(
    request: Request,
    *,
    creating: bool,
    values: dict[str, str],
    stored: Provider | None,
    errors: FormErrors | None = None,
) -> Response:
    console = console_of(request)
    presets = _microsoft_presets()
    cloud = values.get("cloud") if values.get("cloud") in presets else "global"
    tenant = values.get("tenant") or _TENANT
    name = values.get("name", "")
    context = {
        "creating": creating,
        "action": "/providers/_new" if creating else f"/providers/{name}/edit",
        "values": values,
        "errors": errors,
        "secrets_set": {s: getattr(stored, s, None) is not None for s in PROVIDER_SECRETS},
        "redirect_uri": f"{console.settings.base_url.rstrip('/')}/oauth/callback",
        "stored_redirect_uri": stored.redirect_uri if stored else None,
        "google": public_view(google_endpoints()),
        "microsoft": {
            key: url.replace(_TENANT, tenant) if url else None
            for key, url in presets[str(cloud)].items()
        },
        "microsoft_json": json.dumps(presets),
        "kinds": KINDS,
        "auth_methods": AUTH_METHODS,
        "clouds": CLOUDS,
        "endpoint_labels": ENDPOINT_LABELS,
    }
    status = 200 if errors is None else 400
    return render(request, "provider_form.html", context, section="providers", status=status)


def _saved(request: Request, name: str, saved: Saved, *, creating: bool) -> Response:
    console = console_of(request)
    forget_tokens(console, saved.touched)
    audit(request, "provider.create" if creating else "provider.update", name, saved.detail)
    text = f"Provider {name} {'added' if creating else 'saved'}."
    if not creating and not saved.changed:
        text = f"Provider {name}: nothing changed."
    response = redirect("/providers")
    flash(response, " ".join((text, *saved.notices)))
    return response


@router.get("/providers")
def list_providers(request: Request, session: Admin) -> Response:
    return _list_page(request)


def _list_page(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    console = console_of(request)
    store = console.store
    used: dict[str, int] = {}
    for mailbox in store.list_mailboxes():
        used[mailbox.provider] = used.get(mailbox.provider, 0) + 1
    today = console.clock().date()
    rows = [
        {"provider": p, "summary": provider_row(p, today), "mailboxes": used.get(p.name, 0)}
        for p in store.list_providers()
    ]
    context = {
        "rows": rows,
        "error": error,
        "redirect_uri": f"{console.settings.base_url.rstrip('/')}/oauth/callback",
    }
    return render(request, "providers.html", context, section="providers", status=status)


@router.get("/providers/_new")
def new_provider(request: Request, session: Admin, kind: str = "google") -> Response:
    if kind not in {k for k, _ in KINDS}:
        kind = ProviderKind.GENERIC.value
    values = {"kind": kind, "client_auth": ClientAuthMethod.CLIENT_SECRET_POST.value}
    values |= {"cloud": "global", "tenant": ""}
    return _form_page(request, creating=True, values=values, stored=None)


@router.post("/providers/_new")
def create_provider(request: Request, session: Admin, form: Form) -> Response:
    return _submit(request, form, str(form.get("name", "")).strip(), creating=True)


@router.get("/providers/{name}/edit")
def edit_provider(request: Request, name: str, session: Admin) -> Response:
    stored = console_of(request).store.get_provider(name)
    return _form_page(request, creating=False, values=provider_values(stored), stored=stored)


@router.post("/providers/{name}/edit")
def update_provider(request: Request, name: str, session: Admin, form: Form) -> Response:
    console_of(request).store.get_provider(name)  # 404 for a provider removed meanwhile
    return _submit(request, form, name, creating=False)


def _submit(request: Request, form: FormData, name: str, *, creating: bool) -> Response:
    console = console_of(request)
    fields = {key: str(value) for key, value in form.items()}
    try:
        saved = save_provider(console.store, name, fields, creating=creating, now=console.clock())
    except (ConfigError, ValidationError) as err:
        values = {**entered(fields, PROVIDER_SECRETS), "name": name}
        errors = form_errors(err, f"providers.{name}.")
        stored = None if creating else console.store.get_provider(name)
        return _form_page(request, creating=creating, values=values, stored=stored, errors=errors)
    return _saved(request, name, saved, creating=creating)


@router.post("/providers/{name}/delete")
def delete_provider(request: Request, name: str, session: Admin, form: Form) -> Response:
    store = console_of(request).store
    try:
        store.delete_provider(name)
    except InUseError as err:
        return _list_page(request, error=f"Provider {name} was not deleted: {err}", status=409)
    audit(request, "provider.delete", name)
    response = redirect("/providers")
    flash(response, f"Provider {name} deleted.")
    return response
