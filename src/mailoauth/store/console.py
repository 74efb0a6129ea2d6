"""The console's rows: admins, their web sessions, the audit log — and SqlStore's methods.

* ``admins``: one row per console administrator with a slow password hash
  (:mod:`mailoauth.web.console.passwords`; scrypt, its parameters inside the text), never
  the password.
* ``web_sessions``: server-side sessions. The row is keyed by the SHA-256 of the session
  cookie, so the database alone cannot be used to ride a session; it holds the session's
  CSRF secret and its idle and absolute expiry times. Rows go with their admin.
* ``audit_log``: what admins did (log in, log out, failed logins, admin changes, and what
  later pages add). ``detail`` is words for a human; callers never put a secret in it.

None of it is sealed with the store's key (a hash and a CSRF secret bound to a hashed
session id let nobody in on their own), so these transactions need no key. The dashboard's
per-mailbox view of the outbound queue (:meth:`ConsoleMethods.outbound_by_mailbox`) lives
here too: it is a read for the console, one grouped query instead of one per mailbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from mailoauth.errors import ConfigError, InUseError, NotFoundError
from mailoauth.store.engine import read_transaction, write_transaction
from mailoauth.store.outbound import QueueStatus
from mailoauth.store.schema import admins, audit_log, mailboxes, outbound_messages, web_sessions

__all__ = ["Admin", "AuditEntry", "ConsoleMethods", "OutboundSummary", "WebSession"]

_KIND: Final = "admin"
#: Rows ``list_audit`` returns unless told otherwise.
AUDIT_PAGE: Final = 100


@dataclass(frozen=True)
class Admin:
    """A console administrator (``password_hash`` is a scrypt hash, not the password)."""

    name: str
    password_hash: str = field(repr=False)
    created_at: datetime
    password_set_at: datetime
    last_login_at: datetime | None = None


@dataclass(frozen=True)
class WebSession:
    """A console login: ``id_hash`` is the SHA-256 (hex) of the cookie's value."""

    id_hash: str = field(repr=False)
    admin: str
    csrf_secret: str = field(repr=False)
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime  # absolute: the session ends then whatever happens


@dataclass(frozen=True)
class AuditEntry:
    """One admin action. ``admin`` is None when nobody was logged in (a failed login, the
    CLI); ``target`` names the object acted on; ``source`` is the client address or
    ``cli``. ``id`` is set on entries read back."""

    at: datetime
    action: str
    admin: str | None = None
    target: str | None = None
    detail: str | None = None
    source: str | None = None
    id: int | None = None


@dataclass(frozen=True)
class OutboundSummary:
    """One mailbox's part of the outbound queue, for the dashboard."""

    waiting: int = 0  # queued or being sent
    failed: int = 0  # failed or dead: a human should look
    last_sent_at: datetime | None = None


_ADMIN_SELECT: Final = sa.select(
    admins.c.name,
    admins.c.password_hash,
    admins.c.created_at,
    admins.c.password_set_at,
    admins.c.last_login_at,
)
_SESSION_SELECT: Final = sa.select(
    web_sessions.c.id_hash,
    admins.c.name.label("admin"),
    web_sessions.c.csrf_secret,
    web_sessions.c.created_at,
    web_sessions.c.last_seen_at,
    web_sessions.c.expires_at,
).join_from(web_sessions, admins, web_sessions.c.admin_id == admins.c.id)


def _admin_id(conn: Connection, name: str) -> int:
    found = conn.execute(sa.select(admins.c.id).where(admins.c.name == name)).scalar()
    if found is None:
        raise NotFoundError(_KIND, name)
    return int(found)


def _entry(row: Any) -> AuditEntry:
    values = dict(row._mapping)
    values["target"] = values.pop("object")
    return AuditEntry(**values)


class ConsoleMethods:
    """Mixed into :class:`~mailoauth.store.sql.SqlStore`; each method is one transaction."""

    _engine: Engine

    # --- admins ---------------------------------------------------------------------

    def count_admins(self) -> int:
        with read_transaction(self._engine) as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(admins)) or 0)

    def list_admins(self) -> list[Admin]:
        with read_transaction(self._engine) as conn:
            found = conn.execute(_ADMIN_SELECT.order_by(admins.c.name))
            return [Admin(**row._mapping) for row in found]

    def get_admin(self, name: str) -> Admin:
        with read_transaction(self._engine) as conn:
            row = conn.execute(_ADMIN_SELECT.where(admins.c.name == name)).first()
            if row is None:
                raise NotFoundError(_KIND, name)
            return Admin(**row._mapping)

    def add_admin(self, admin: Admin, *, first: bool = False) -> None:
        """Store a new admin; ConfigError when the name is taken. ``first``: only when no
        admin exists yet (the one-time setup page), checked in the same transaction."""
        with write_transaction(self._engine) as conn:
            if first and conn.scalar(sa.select(sa.func.count()).select_from(admins)):
                raise InUseError(
                    "an admin exists already, so the setup link no longer works; log in, or "
                    "`mailoauth admin create NAME` on the server"
                )
            taken = ConfigError(
                _KIND,
                f"{admin.name!r} exists already",
                f"pick another name, or `mailoauth admin reset-password {admin.name}`",
            )
            if conn.execute(sa.select(admins.c.id).where(admins.c.name == admin.name)).first():
                raise taken
            try:
                conn.execute(
                    sa.insert(admins).values(
                        name=admin.name,
                        password_hash=admin.password_hash,
                        created_at=admin.created_at,
                        password_set_at=admin.password_set_at,
                        last_login_at=admin.last_login_at,
                    )
                )
            except IntegrityError as exc:  # a concurrent add of the same name
                raise taken from exc

    def set_admin_password(self, name: str, password_hash: str, *, now: datetime) -> int:
        """Replace the admin's password hash and end all of its sessions (how many)."""
        with write_transaction(self._engine) as conn:
            owner = _admin_id(conn, name)
            conn.execute(
                sa.update(admins)
                .where(admins.c.id == owner)
                .values(password_hash=password_hash, password_set_at=now)
            )
            ended = conn.execute(sa.delete(web_sessions).where(web_sessions.c.admin_id == owner))
            return int(ended.rowcount)

    def delete_admin(self, name: str) -> None:
        """Remove the admin and end its sessions (its audit entries stay)."""
        with write_transaction(self._engine) as conn:
            owner = _admin_id(conn, name)
            conn.execute(sa.delete(web_sessions).where(web_sessions.c.admin_id == owner))
            conn.execute(sa.delete(admins).where(admins.c.id == owner))

    # --- sessions -------------------------------------------------------------------

    def add_web_session(self, session: WebSession) -> None:
        """Store a new session and note the admin's login time."""
        with write_transaction(self._engine) as conn:
            owner = _admin_id(conn, session.admin)
            conn.execute(
                sa.insert(web_sessions).values(
                    id_hash=session.id_hash,
                    admin_id=owner,
                    csrf_secret=session.csrf_secret,
                    created_at=session.created_at,
                    last_seen_at=session.last_seen_at,
                    expires_at=session.expires_at,
                )
            )
            conn.execute(
                sa.update(admins)
                .where(admins.c.id == owner)
                .values(last_login_at=session.created_at)
            )

    def get_web_session(self, id_hash: str) -> WebSession | None:
        with read_transaction(self._engine) as conn:
            row = conn.execute(_SESSION_SELECT.where(web_sessions.c.id_hash == id_hash)).first()
            return None if row is None else WebSession(**row._mapping)

    def touch_web_session(self, id_hash: str, *, now: datetime) -> None:
        with write_transaction(self._engine) as conn:
            conn.execute(
                sa.update(web_sessions)
                .where(web_sessions.c.id_hash == id_hash)
                .values(last_seen_at=now)
            )

    def delete_web_session(self, id_hash: str) -> bool:
        with write_transaction(self._engine) as conn:
            deleted = conn.execute(sa.delete(web_sessions).where(web_sessions.c.id_hash == id_hash))
            return bool(deleted.rowcount)

    def prune_web_sessions(self, *, now: datetime, idle_since: datetime) -> int:
        """Delete sessions past their absolute end or not seen since ``idle_since``."""
        with write_transaction(self._engine) as conn:
            gone = conn.execute(
                sa.delete(web_sessions).where(
                    sa.or_(
                        web_sessions.c.expires_at <= now,
                        web_sessions.c.last_seen_at <= idle_since,
                    )
                )
            )
            return int(gone.rowcount)

    # --- audit log ------------------------------------------------------------------

    def add_audit(self, entry: AuditEntry) -> None:
        with write_transaction(self._engine) as conn:
            conn.execute(
                sa.insert(audit_log).values(
                    at=entry.at,
                    admin=entry.admin,
                    action=entry.action,
                    object=entry.target,
                    detail=entry.detail,
                    source=entry.source,
                )
            )

    def list_audit(self, *, limit: int = AUDIT_PAGE, before: int | None = None) -> list[AuditEntry]:
        """The newest entries first; ``before``: only entries older than that id."""
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if before is not None:
            query = query.where(audit_log.c.id < before)
        with read_transaction(self._engine) as conn:
            return [_entry(row) for row in conn.execute(query)]

    # --- the dashboard's view of the queue -------------------------------------------

    def outbound_by_mailbox(self) -> dict[str, OutboundSummary]:
        """Per mailbox name (only those with messages): waiting, failed, last sent.

        ``max()`` keeps the column's type, so ``last_sent_at`` comes back timezone-aware."""
        t = outbound_messages
        waiting = (QueueStatus.QUEUED.value, QueueStatus.SENDING.value)
        failed = (QueueStatus.FAILED.value, QueueStatus.DEAD.value)
        query = (
            sa.select(
                mailboxes.c.name,
                sa.func.count().filter(t.c.status.in_(waiting)),
                sa.func.count().filter(t.c.status.in_(failed)),
                sa.func.max(t.c.sent_at),
            )
            .join_from(t, mailboxes, t.c.mailbox_id == mailboxes.c.id)
            .group_by(mailboxes.c.name)
        )
        with read_transaction(self._engine) as conn:
            rows = conn.execute(query).all()
        return {name: OutboundSummary(int(w or 0), int(f or 0), sent) for name, w, f, sent in rows}
