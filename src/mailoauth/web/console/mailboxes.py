"""The mailbox pages: list, add, edit, delete (``/mailboxes``); the mailbox's own page
with its state and buttons is :mod:`.mailbox_actions`.

::

    GET  /mailboxes                  every mailbox with its state
    GET  /mailboxes/_new             the form for a new one (?provider=P preselects one)
    POST /mailboxes/_new             create it, then its page (to authorize it)
    GET  /mailboxes/{name}/edit      the form of a stored one
    POST /mailboxes/{name}/edit      save it
    POST /mailboxes/{name}/delete    remove it and its tokens (refused while mail waits)

The form holds the grant, the identity, the addresses, and the outgoing (SMTP, Graph,
Gmail API) and incoming (IMAP, POP3, Graph, Gmail API) settings; its script fills in the
port of the chosen security mode. Password-grant passwords and service-account keys are
write-only (:mod:`.fields`). A saved change that invalidates the mailbox's grant (scopes,
provider, client, login) marks it and says "re-authorization needed" (:mod:`.regrant`).
"""

from __future__ import annotations

import json
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from mailoauth.errors import ConfigError, InUseError
from mailoauth.models import Mailbox, mailbox_scopes
from mailoauth.providers import DEFAULT_PORTS, GrantType, Security, Transport
from mailoauth.scheduler import load_snapshot
from mailoauth.store import OutboundSummary, WebSession
from mailoauth.web.console.audit import audit
from mailoauth.web.console.dashboard import mailbox_row
from mailoauth.web.console.fields import (
    MAILBOX_SECRETS,
    FormErrors,
    entered,
    form_errors,
    mailbox_values,
)
from mailoauth.web.console.forms import form_of
from mailoauth.web.console.pages import scheduler_status
from mailoauth.web.console.render import flash, redirect, render
from mailoauth.web.console.routing import ConsoleRoute
from mailoauth.web.console.runtime import forget_tokens
from mailoauth.web.console.saving import save_mailbox
from mailoauth.web.console.sessions import require_admin
from mailoauth.web.console.state import console_of

__all__ = ["router"]

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
Admin = Annotated[WebSession, Depends(require_admin)]
Form = Annotated[FormData, Depends(form_of)]

GRANTS: Final = (
    (GrantType.AUTHORIZATION_CODE.value, "Authorization code — an admin consents in a browser"),
    (GrantType.DEVICE_CODE.value, "Device code — consent on another device (CLI)"),
    (GrantType.PASSWORD.value, "Password — the mail account's own password (legacy)"),
    (GrantType.CLIENT_CREDENTIALS.value, "Client credentials — app-only access (Microsoft)"),
    (GrantType.SERVICE_ACCOUNT.value, "Service account — Google Workspace delegation"),
)
OUTGOING: Final = (
    ("", "None — this mailbox does not send"),
    (Transport.SMTP.value, "SMTP submission"),
    (Transport.GRAPH.value, "Microsoft Graph (HTTPS)"),
    (Transport.GMAIL_API.value, "Gmail API (HTTPS)"),
)
INCOMING: Final = (
    ("", "None — this mailbox does not fetch"),
    (Transport.IMAP.value, "IMAP"),
    (Transport.POP3.value, "POP3"),
    (Transport.GRAPH.value, "Microsoft Graph (HTTPS)"),
    (Transport.GMAIL_API.value, "Gmail API (HTTPS)"),
)
SECURITY: Final = (
    (Security.STARTTLS.value, "STARTTLS"),
    (Security.SSL.value, "TLS from the start (SSL)"),
    (Security.NONE.value, "None (loopback or allow insecure only)"),
)
AFTER_FETCH: Final = (
    ("keep", "Keep it as it is"),
    ("seen", "Mark it as read (IMAP)"),
    ("delete", "Delete it"),
    ("move", "Move it to a folder (IMAP)"),
)
SASL: Final = (("auto", "Automatic"), ("xoauth2", "XOAUTH2"), ("oauthbearer", "OAUTHBEARER"))
NEW_VALUES: Final = {
    "grant": GrantType.AUTHORIZATION_CODE.value,
    "outgoing.transport": Transport.SMTP.value,
    "outgoing.security": Security.STARTTLS.value,
    "outgoing.port": str(DEFAULT_PORTS[Transport.SMTP][Security.STARTTLS]),
    "incoming.transport": "",
    "incoming.security": Security.SSL.value,
    "incoming.folder": "INBOX",
    "incoming.poll_interval": "5",
    "incoming.after_fetch": "keep",
    "sasl_mechanism": "auto",
}


def _ports_json() -> str:
    return json.dumps(
        {
            t.value: {s.value: port for s, port in modes.items()}
            for t, modes in DEFAULT_PORTS.items()
        }
    )


def _form_page(
    request: Request,
    *,
    creating: bool,
    values: dict[str, str],
    stored: Mailbox | None,
    errors: FormErrors | None = None,
) -> Response:
    store = console_of(request).store
    providers = store.list_providers()
    scopes: tuple[str, ...] = ()
    if stored is not None:
        scopes = mailbox_scopes(stored, store.get_provider(stored.provider))
    name = values.get("name", "")
    context = {
        "creating": creating,
        "action": "/mailboxes/_new" if creating else f"/mailboxes/{name}/edit",
        "values": values,
        "errors": errors,
        "secrets_set": {
            "password": stored is not None and stored.password is not None,
            "service_account_json": stored is not None and stored.service_account_key is not None,
        },
        "providers": [(p.name, f"{p.name} ({p.kind.value})") for p in providers],
        "grants": GRANTS,
        "outgoing": OUTGOING,
        "incoming": INCOMING,
        "security": SECURITY,
        "after_fetch": AFTER_FETCH,
        "sasl": SASL,
        "ports_json": _ports_json(),
        "requested_scopes": " ".join(scopes),
    }
    status = 200 if errors is None else 400
    return render(request, "mailbox_form.html", context, section="mailboxes", status=status)


@router.get("/mailboxes")
def list_mailboxes(request: Request, session: Admin) -> Response:
    return _list_page(request)


def _list_page(request: Request, *, error: str | None = None, status: int = 200) -> Response:
    console = console_of(request)
    snapshot = load_snapshot(console.store)
    queue = console.store.outbound_by_mailbox()
    scheduler = scheduler_status(request)
    rows = [
        (entry.mailbox, mailbox_row(entry, scheduler, queue.get(entry.name, OutboundSummary())))
        for entry in snapshot.mailboxes
    ]
    context = {"rows": rows, "error": error, "has_providers": bool(snapshot.providers)}
    return render(request, "mailboxes.html", context, section="mailboxes", status=status)


@router.get("/mailboxes/_new")
def new_mailbox(request: Request, session: Admin, provider: str | None = None) -> Response:
    providers = [p.name for p in console_of(request).store.list_providers()]
    if not providers:
        response = redirect("/providers")
        flash(response, "Add a provider first: a mailbox gets its tokens through one.")
        return response
    values = {**NEW_VALUES, "provider": provider if provider in providers else providers[0]}
    return _form_page(request, creating=True, values=values, stored=None)


@router.post("/mailboxes/_new")
def create_mailbox(request: Request, session: Admin, form: Form) -> Response:
    return _submit(request, form, str(form.get("name", "")).strip(), creating=True)


@router.get("/mailboxes/{name}/edit")
def edit_mailbox(request: Request, name: str, session: Admin) -> Response:
    stored = console_of(request).store.get_mailbox(name)
    return _form_page(request, creating=False, values=mailbox_values(stored), stored=stored)


@router.post("/mailboxes/{name}/edit")
def update_mailbox(request: Request, name: str, session: Admin, form: Form) -> Response:
    console_of(request).store.get_mailbox(name)  # 404 for a mailbox removed meanwhile
    return _submit(request, form, name, creating=False)


def _submit(request: Request, form: FormData, name: str, *, creating: bool) -> Response:
    console = console_of(request)
    fields = {key: str(value) for key, value in form.items()}
    try:
        saved = save_mailbox(console.store, name, fields, creating=creating, now=console.clock())
    except (ConfigError, ValidationError) as err:
        values = {**entered(fields, MAILBOX_SECRETS), "name": name}
        errors = form_errors(err, f"mailboxes.{name}.")
        stored = None if creating else console.store.get_mailbox(name)
        return _form_page(request, creating=creating, values=values, stored=stored, errors=errors)
    forget_tokens(console, saved.touched)
    audit(request, "mailbox.create" if creating else "mailbox.update", name, saved.detail)
    text = f"Mailbox {name} {'added' if creating else 'saved'}."
    if not creating and not saved.changed:
        text = f"Mailbox {name}: nothing changed."
    response = redirect(f"/mailboxes/{name}")
    flash(response, " ".join((text, *saved.notices)))
    return response


@router.post("/mailboxes/{name}/delete")
def delete_mailbox(request: Request, name: str, session: Admin, form: Form) -> Response:
    console = console_of(request)
    try:
        console.store.delete_mailbox(name)
    except InUseError as err:
        return _list_page(request, error=f"Mailbox {name} was not deleted: {err}", status=409)
    forget_tokens(console, (name,))
    audit(request, "mailbox.delete", name, "its tokens and transcript are gone")
    response = redirect("/mailboxes")
    flash(response, f"Mailbox {name} deleted.")
    return response
