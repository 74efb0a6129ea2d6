"""Writing the audit log from a console route: who did what to which object, from where.

Every state-changing console action calls :func:`audit` once it has happened (and the
login page for failed logins): ``action`` is a dotted verb (``login``, ``login.failed``,
``logout``, ``admin.create``, ``provider.update`` …), ``target`` the object's name,
``detail`` a few words for a human. Never pass a secret: the log is shown on the Audit
log page and kept forever (write "client secret changed", not the secret).
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from mailoauth.store import AuditEntry
from mailoauth.web.console.forms import source_of
from mailoauth.web.console.sessions import current_session
from mailoauth.web.console.state import console_of

__all__ = ["audit"]


def audit(
    connection: HTTPConnection,
    action: str,
    target: str | None = None,
    detail: str | None = None,
    *,
    admin: str | None = None,
) -> None:
    """Record ``action`` by the logged-in admin (or ``admin``); blocking (a store write)."""
    console = console_of(connection)
    if admin is None:
        session = current_session(connection)
        admin = session.admin if session else None
    entry = AuditEntry(
        at=console.clock(),
        action=action,
        admin=admin,
        target=target,
        detail=detail,
        source=source_of(connection),
    )
    console.store.add_audit(entry)
