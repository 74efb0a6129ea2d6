"""A mailbox's debug transcript page (``/mailboxes/{name}/debug``): what ``mailoauth debug
NAME`` shows, in the browser.

::

    GET  /mailboxes/{name}/debug?lines=N    the newest N lines (default 200), oldest first
    POST /mailboxes/{name}/debug            switch recording on or off (form field "debug")
    POST /mailboxes/{name}/debug/clear      delete the mailbox's transcript

The transcript is written by every mail operation while the mailbox's ``debug`` switch is
on, and by each Test connection / Send test mail run; every line is redacted when it is
recorded (:mod:`mailoauth.mail.transcript`: no token, password or AUTH payload), and the
store keeps a bounded ring per mailbox. Switching and clearing are audited.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from mailoauth.store import WebSession
from mailoauth.web.console.audit import audit
from mailoauth.web.console.forms import form_of
from mailoauth.web.console.render import flash, redirect, render
from mailoauth.web.console.routing import ConsoleRoute
from mailoauth.web.console.sessions import require_admin
from mailoauth.web.console.state import console_of

__all__ = ["router"]

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
Admin = Annotated[WebSession, Depends(require_admin)]
Form = Annotated[FormData, Depends(form_of)]

DEFAULT_LINES: Final = 200
CHOICES: Final = (50, 200, 1000, 5000)


@router.get("/mailboxes/{name}/debug")
def transcript_page(
    request: Request, name: str, session: Admin, lines: int = DEFAULT_LINES
) -> Response:
    store = console_of(request).store
    mailbox = store.get_mailbox(name)
    lines = min(max(lines, 1), CHOICES[-1])
    found = store.read_transcript(name, limit=lines)
    values = {"mailbox": mailbox, "lines": found, "limit": lines, "choices": CHOICES}
    return render(request, "transcript.html", values, section="mailboxes")


@router.post("/mailboxes/{name}/debug")
def switch(request: Request, name: str, session: Admin, form: Form) -> Response:
    store = console_of(request).store
    mailbox = store.get_mailbox(name)
    on = form.get("debug") == "on"
    if mailbox.debug != on:
        store.put_mailbox(replace(mailbox, debug=on))
        audit(request, "mailbox.debug", name, "recording on" if on else "recording off")
    response = redirect(f"/mailboxes/{name}/debug")
    word = "on: every operation of this mailbox is recorded" if on else "off"
    flash(response, f"Debug transcripts of {name} are {word}.")
    return response


@router.post("/mailboxes/{name}/debug/clear")
def clear(request: Request, name: str, session: Admin, form: Form) -> Response:
    count = console_of(request).store.clear_transcript(name)
    audit(request, "mailbox.debug.clear", name, f"{count} line(s) deleted")
    response = redirect(f"/mailboxes/{name}/debug")
    flash(response, f"Deleted {count} transcript line(s) of {name}.")
    return response
