"""The outbound queue page (``/queue``): what waits, what went, what failed and why.

::

    GET  /queue?status=S&mailbox=M   the newest messages (all, or of a status / mailbox)
    POST /queue/{id}/retry           a failed, dead or waiting message: due again now
    POST /queue/{id}/delete          delete one message (not while it is being sent)
    POST /queue/purge                delete sent messages older than N days

The same operations as ``mailoauth queue`` and ``/api/v1/queue``. A row shows the
envelope, subject, status, attempts, next attempt and last error — never the message's
body (someone's mail). A retried message goes out at the scheduler's next delivery run
(every 15 seconds). Every change is audited.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Final

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from mailoauth.errors import ConfigError
from mailoauth.store import QueueStatus, WebSession
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
EntryId = Annotated[int, Path(ge=1, le=2**63 - 1)]

#: The newest this many messages are shown.
PAGE: Final = 200
_RETRYABLE: Final = frozenset({QueueStatus.QUEUED, QueueStatus.FAILED, QueueStatus.DEAD})


@router.get("/queue")
def queue_page(
    request: Request,
    session: Admin,
    status: str = "",
    mailbox: str = "",
) -> Response:
    store = console_of(request).store
    chosen = QueueStatus(status) if status in set(QueueStatus) else None
    names = [m.name for m in store.list_mailboxes()]
    owner = mailbox if mailbox in names else None
    entries = store.list_outbound(statuses=(chosen,) if chosen else (), mailbox=owner, limit=PAGE)
    counts = store.outbound_counts()
    values = {
        "entries": entries,
        "counts": [(s, counts.get(s, 0)) for s in QueueStatus],
        "statuses": [s.value for s in QueueStatus],
        "mailboxes": names,
        "status": chosen.value if chosen else "",
        "mailbox": owner or "",
        "retryable": _RETRYABLE,
        "page_size": PAGE,
    }
    return render(request, "queue.html", values, section="queue")


def _back(text: str) -> Response:
    response = redirect("/queue")
    flash(response, text)
    return response


@router.post("/queue/purge")
def purge_sent(request: Request, session: Admin, form: Form) -> Response:
    console = console_of(request)
    raw = str(form.get("days", "")).strip()
    if not raw.isdigit() or int(raw) > 36500:
        return _back(f"Nothing deleted: {raw!r} is not a number of days (0 to 36500).")
    days = int(raw)
    count = console.store.purge_outbound_where(sent_before=console.clock() - timedelta(days=days))
    audit(request, "queue.purge", None, f"{count} sent message(s) older than {days} day(s)")
    return _back(f"Deleted {count} sent message(s) older than {days} day(s).")


@router.post("/queue/{entry_id}/retry")
def retry(request: Request, entry_id: EntryId, session: Admin, form: Form) -> Response:
    console = console_of(request)
    try:
        entry = console.store.retry_outbound(entry_id, now=console.clock())
    except ConfigError as err:
        return _back(f"Message {entry_id} was not retried: {err.problem}; {err.fix}.")
    audit(request, "queue.retry", f"message {entry_id}", f"mailbox {entry.mailbox}")
    return _back(f"Message {entry_id} queued again: it goes out at the next delivery run.")


@router.post("/queue/{entry_id}/delete")
def delete(request: Request, entry_id: EntryId, session: Admin, form: Form) -> Response:
    console = console_of(request)
    try:
        entry = console.store.purge_outbound(entry_id)
    except ConfigError as err:
        return _back(f"Message {entry_id} was not deleted: {err.problem}; {err.fix}.")
    detail = f"mailbox {entry.mailbox}, was {entry.status.value}"
    audit(request, "queue.delete", f"message {entry_id}", detail)
    return _back(f"Message {entry_id} deleted.")
