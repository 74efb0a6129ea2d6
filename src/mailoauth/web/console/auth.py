"""Logging in and out of the console.

``POST /login`` checks the login limits first (:mod:`.limits`: too many failures from the
address or for the name → ``429`` with the wait, no password checked), then the password
(:func:`~mailoauth.web.console.accounts.authenticate`, in the route's worker thread, the
same time for unknown names). A failure is counted and audited (``login.failed``, with
the name typed, never the password); a success starts a new session (:mod:`.sessions`)
and goes to ``next`` if it is a path on this site. ``POST /logout`` deletes the session.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from mailoauth.secret import Secret
from mailoauth.web.console.accounts import authenticate
from mailoauth.web.console.audit import audit
from mailoauth.web.console.forms import form_of, is_safe_next, source_of
from mailoauth.web.console.render import flash, redirect, render, render_error
from mailoauth.web.console.sessions import current_session, end_session, start_session
from mailoauth.web.console.state import console_of

__all__ = ["router"]

router = APIRouter(include_in_schema=False)


def _login_page(
    request: Request, target: str, *, name: str = "", error: str | None = None, status: int = 200
) -> Response:
    values = {
        "next": target if is_safe_next(target) else "/",
        "name": name,
        "error": error,
        "no_admin": console_of(request).store.count_admins() == 0,
    }
    return render(request, "login.html", values, section="login", status=status)


def _too_many(request: Request, wait: int) -> Response:
    minutes = max(1, round(wait / 60))
    message = (
        "Too many failed logins from your address or for this admin name. "
        f"Try again in {wait} seconds (about {minutes} min)."
    )
    headers = {"Retry-After": str(wait)}
    return render_error(request, 429, "Too many failed logins", message, headers=headers)


@router.get("/login")
def login_page(request: Request, next: str = "/") -> Response:
    if current_session(request) is not None:
        return redirect(next if is_safe_next(next) else "/")
    return _login_page(request, next)


@router.post("/login")
def login(request: Request, form: Annotated[FormData, Depends(form_of)]) -> Response:
    console = console_of(request)
    name = str(form.get("name", "")).strip()[:64]
    password = str(form.get("password", ""))
    target = str(form.get("next", "/"))
    if not name or not password:
        error = "Enter your admin name and password."
        return _login_page(request, target, name=name, error=error, status=400)
    address = source_of(request)
    if wait := console.limits.retry_after(address, name):
        return _too_many(request, wait)
    admin = authenticate(console.store, name, Secret(password))
    if admin is None:
        wait = console.limits.failure(address, name)
        audit(request, "login.failed", name, "wrong name or password")
        if wait:
            return _too_many(request, wait)
        error = "Wrong admin name or password."
        return _login_page(request, target, name=name, error=error, status=401)
    console.limits.success(address, name)
    response = redirect(target if is_safe_next(target) else "/")
    start_session(request, response, admin.name)
    audit(request, "login", admin.name, admin=admin.name)
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    response = redirect("/login")
    session = end_session(request, response)
    if session is not None:
        audit(request, "logout", session.admin, admin=session.admin)
    flash(response, "You are logged out.")
    return response
