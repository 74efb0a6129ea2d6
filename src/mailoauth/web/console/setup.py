"""First run: a one-time link that lets the first admin be created in the browser.

When no admin exists, ``mailoauth serve`` asks :func:`setup_link` for a link and prints it
on stderr for the operator (never through the ``mailoauth`` loggers). The token is 256
random bits, kept only as its SHA-256 in this process's memory, good for
:data:`SETUP_TTL` (1 h) and for one admin: creating the admin kills it, and so does any
admin appearing otherwise (``mailoauth admin create``), since the store creates the first
admin only while none exists, in one transaction. A restart makes a new link.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from mailoauth.errors import ConfigError, InUseError
from mailoauth.secret import Secret
from mailoauth.web.console.accounts import MIN_PASSWORD_LENGTH, create_admin
from mailoauth.web.console.audit import audit
from mailoauth.web.console.forms import form_of, source_of
from mailoauth.web.console.render import flash, redirect, render
from mailoauth.web.console.sessions import digest, start_session
from mailoauth.web.console.state import Console, console_of

__all__ = ["SETUP_TTL", "router", "setup_link"]

SETUP_TTL: Final = timedelta(hours=1)

router = APIRouter(include_in_schema=False)


def setup_link(app: FastAPI) -> str | None:
    """A new one-time link to create the first admin, or None when an admin exists.
    Blocking (reads the store). Any earlier link stops working."""
    console = app.state.console
    assert isinstance(console, Console)
    if console.store.count_admins():
        return None
    token = secrets.token_urlsafe(32)
    console.setup.token_hash = digest(token)
    console.setup.expires_at = console.clock() + SETUP_TTL
    return f"{console.settings.base_url}/setup?token={token}"


def _valid(console: Console, token: str) -> bool:
    link = console.setup
    if not token or link.token_hash is None or link.expires_at is None:
        return False
    if console.clock() >= link.expires_at:
        return False
    return hmac.compare_digest(digest(token), link.token_hash)


def _dead(request: Request) -> Response:
    return render(request, "setup.html", {"valid": False}, status=410)


def _form(request: Request, token: str, *, name: str = "", error: str | None = None) -> Response:
    values = {"valid": True, "token": token, "name": name, "error": error}
    values["min_length"] = MIN_PASSWORD_LENGTH
    return render(request, "setup.html", values, status=400 if error else 200)


@router.get("/setup")
def setup_page(request: Request, token: str = "") -> Response:
    console = console_of(request)
    if not _valid(console, token) or console.store.count_admins():
        return _dead(request)
    return _form(request, token)


@router.post("/setup")
def setup_submit(request: Request, form: Annotated[FormData, Depends(form_of)]) -> Response:
    console = console_of(request)
    token = str(form.get("token", ""))
    if not _valid(console, token):
        return _dead(request)
    name = str(form.get("name", "")).strip()
    password, confirm = str(form.get("password", "")), str(form.get("confirm", ""))
    if password != confirm:
        return _form(request, token, name=name, error="The two passwords differ.")
    try:
        create_admin(console.store, name, Secret(password), first=True, source=source_of(request))
    except InUseError:
        console.setup.token_hash = None
        return _dead(request)
    except ConfigError as err:
        return _form(request, token, name=name, error=str(err))
    console.setup.token_hash = console.setup.expires_at = None
    response = redirect("/")
    start_session(request, response, name)
    audit(request, "login", name, "right after setup", admin=name)
    flash(response, f"Welcome, {name}: you are logged in, and the setup link is used up.")
    return response
