"""A mailbox's own page and what its buttons do.

::

    GET  /mailboxes/{name}             state, token, settings, the buttons
    GET  /mailboxes/{name}/state       the state box alone (the page's script reloads it)
    POST /mailboxes/{name}/authorize   JSON: the consent URL, or a token obtained now
    POST /mailboxes/{name}/test        Test connection: the steps and the transcript
    POST /mailboxes/{name}/send-test   Send test mail: the outcome and the transcript

**Authorize.** For the authorization-code grant the page's script opens a popup in the
click handler (so popup blockers let it), asks ``/authorize`` (the CSRF token in the
``X-CSRF-Token`` header) for the provider's URL — :func:`mailoauth.web.authorize.begin`,
the request bound to this console session — and sends the popup there. The provider
returns the popup to ``/oauth/callback``, which shows the outcome and posts it to this
page (same origin); the page then reloads its state box, without reloading itself. For the
grants that need no browser (password, client credentials, service account) the button
asks the token service for a token now and shows the outcome.

**Device code** is left to the CLI (``mailoauth authorize NAME`` shows the code and the
link and waits): the flow needs someone polling the token endpoint for up to the code's
lifetime (minutes), which in the service would be a background job per admin screen that
a restart or another node of a cluster loses; and an admin in front of the console has a
browser, so the authorization-code grant is the better way here (Google's device flow
does not grant mail scopes at all).

**Test connection** runs :func:`mailoauth.mail.checking.check` and **Send test mail**
:func:`mailoauth.mail.sending.send`, both with a recording transcript (as ``mailoauth test
--debug`` does): the steps are shown with the redacted transcript of this run below.
Every action is audited, without secrets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import FormData

from mailoauth.errors import MailoauthError
from mailoauth.mail.checking import check
from mailoauth.mail.sending import send
from mailoauth.models import Mailbox, TranscriptLine, mailbox_scopes
from mailoauth.providers import GrantType
from mailoauth.scheduler.snapshot import MailboxEntry
from mailoauth.store import OutboundSummary, WebSession
from mailoauth.validate import check_address
from mailoauth.web import authorize
from mailoauth.web.console.audit import audit
from mailoauth.web.console.dashboard import mailbox_row
from mailoauth.web.console.forms import form_of
from mailoauth.web.console.pages import scheduler_status
from mailoauth.web.console.render import render
from mailoauth.web.console.routing import ConsoleRoute
from mailoauth.web.console.runtime import on_loop, running
from mailoauth.web.console.sessions import COOKIE, require_admin
from mailoauth.web.console.state import console_of

__all__ = ["Result", "router"]

router = APIRouter(include_in_schema=False, route_class=ConsoleRoute)
Admin = Annotated[WebSession, Depends(require_admin)]
Form = Annotated[FormData, Depends(form_of)]

#: At most this many transcript lines of one run are shown under its result.
RUN_LINES = 400
_NO_BROWSER = (GrantType.PASSWORD, GrantType.CLIENT_CREDENTIALS, GrantType.SERVICE_ACCOUNT)


@dataclass(frozen=True)
class Step:
    name: str
    ok: bool
    detail: str


@dataclass
class Result:
    """What a button did: its steps, or the error that stopped it, and the transcript."""

    title: str
    steps: list[Step] = field(default_factory=list)
    error: str | None = None
    transcript: list[TranscriptLine] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and all(step.ok for step in self.steps)


def _state(request: Request, mailbox: Mailbox) -> dict[str, Any]:
    store = console_of(request).store
    provider = store.get_provider(mailbox.provider)
    grant = store.get_grant(mailbox.name)
    queue = store.outbound_by_mailbox().get(mailbox.name, OutboundSummary())
    row = mailbox_row(MailboxEntry(mailbox, provider, grant), scheduler_status(request), queue)
    return {"mailbox": mailbox, "provider": provider, "grant": grant, "row": row}


def _page(
    request: Request,
    mailbox: Mailbox,
    *,
    result: Result | None = None,
    send_to: str = "",
) -> Response:
    values = _state(request, mailbox)
    mode = "device"
    if mailbox.grant is GrantType.AUTHORIZATION_CODE:
        mode = "popup"
    elif mailbox.grant in _NO_BROWSER:
        mode = "direct"
    values |= {
        "scopes": mailbox_scopes(mailbox, values["provider"]),
        "authorize_mode": mode,
        "result": result,
        "send_to": send_to,
    }
    return render(request, "mailbox.html", values, section="mailboxes")


@router.get("/mailboxes/{name}")
def mailbox_page(request: Request, name: str, session: Admin) -> Response:
    return _page(request, console_of(request).store.get_mailbox(name))


@router.get("/mailboxes/{name}/state")
def mailbox_state(request: Request, name: str, session: Admin) -> Response:
    """The state box alone (no layout, and no notice taken from a page to come)."""
    console = console_of(request)
    values = _state(request, console.store.get_mailbox(name)) | {"now": console.clock()}
    return console.templates.TemplateResponse(request, "mailbox_state.html", values)


@router.post("/mailboxes/{name}/authorize")
def authorize_mailbox(request: Request, name: str, session: Admin) -> Response:
    console = console_of(request)
    mailbox = console.store.get_mailbox(name)
    if mailbox.grant is GrantType.DEVICE_CODE:
        message = (
            f"mailbox {name} uses the device-code grant: run `mailoauth authorize {name}` on "
            "the server, which shows the code and the link and waits for the approval"
        )
        return JSONResponse({"error": message}, status_code=409)
    try:
        if mailbox.grant is GrantType.AUTHORIZATION_CODE:
            url = on_loop(
                authorize.begin,
                console.store,
                console.settings.base_url,
                name,
                session_id=request.cookies.get(COOKIE),
                initiator=f"admin {session.admin}",
            )
            audit(request, "mailbox.authorize", name, "consent page opened")
            return JSONResponse({"url": url})
        tokens, _http = running(console)
        token = on_loop(tokens.refresh, name)
    except MailoauthError as err:
        audit(request, "mailbox.authorize", name, f"failed: {err}")
        return JSONResponse({"error": str(err)}, status_code=409)
    until = f"{token.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    audit(request, "mailbox.authorize", name, f"new token ({mailbox.grant.value}) until {until}")
    return JSONResponse({"ok": True, "message": f"a new token, valid until {until}"})


def _run_transcript(request: Request, name: str, since: datetime) -> list[TranscriptLine]:
    lines = console_of(request).store.read_transcript(name, limit=RUN_LINES)
    return [line for line in lines if line.at >= since]


@router.post("/mailboxes/{name}/test")
def test_mailbox(request: Request, name: str, session: Admin, form: Form) -> Response:
    console = console_of(request)
    mailbox = console.store.get_mailbox(name)
    result = Result("Test connection")
    since = datetime.now(UTC)
    try:
        tokens, http = running(console)
        found = on_loop(
            check, console.store, tokens, mailbox, http=http, ca_file=console.settings.ca_file,
            debug=True,
        )  # fmt: skip
        result.steps = [Step(s.name, s.ok, s.detail) for s in found]
    except MailoauthError as err:
        result.error = str(err)
    result.transcript = _run_transcript(request, name, since)
    failed = next((s.name for s in result.steps if not s.ok), None)
    detail = "every step passed" if result.ok else f"failed: {failed or result.error}"
    audit(request, "mailbox.test", name, detail)
    return _page(request, mailbox, result=result)


def _test_message(name: str, to: str, admin: str) -> EmailMessage:
    message = EmailMessage()
    message["To"] = to
    message["Subject"] = f"mailoauth test message from {name}"
    message.set_content(
        f"This message was sent from the mailoauth console by admin {admin} to check that "
        f"mailbox {name} can send.\n"
    )
    return message


@router.post("/mailboxes/{name}/send-test")
def send_test(request: Request, name: str, session: Admin, form: Form) -> Response:
    console = console_of(request)
    mailbox = console.store.get_mailbox(name)
    to = str(form.get("to", "")).strip()
    result = Result("Send test mail")
    since = datetime.now(UTC)
    try:
        check_address("to", to)
        tokens, http = running(console)
        sent = on_loop(
            send, console.store, tokens, name, _test_message(name, to, session.admin),
            http=http, ca_file=console.settings.ca_file, debug=True,
        )  # fmt: skip
        transport = mailbox.outgoing.transport.value if mailbox.outgoing else "?"
        result.steps = [Step("send", True, f"sent {sent['Message-ID']} to {to} over {transport}")]
    except MailoauthError as err:
        result.error = str(err)
    result.transcript = _run_transcript(request, name, since)
    audit(request, "mailbox.send_test", name, f"to {to}: {'sent' if result.ok else result.error}")
    return _page(request, mailbox, result=result, send_to=to)
