"""Authorizations the service started and the provider has not answered yet.

When an admin clicks **Authorize** (or an API client asks for the URL), the service sends
the browser to the provider with a one-time ``state`` and a PKCE challenge, and must later
recognise the answer at ``/oauth/callback`` — possibly on another node sharing the store,
so the request is kept here, not in memory:

* ``state`` only as its SHA-256 (``state_hash``): the database alone cannot forge an answer;
* the PKCE ``code_verifier`` sealed like every other secret (re-sealed by key rotation);
* ``session_hash``: the SHA-256 of the console session that started it, or NULL when an
  API client started it;
* ``expires_at``: ten minutes after the start.

:meth:`PendingMethods.take_pending` deletes the row it returns in the same transaction, so
an answer is used at most once however many times it arrives.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from mailoauth.secret import Secret
from mailoauth.store.schema import mailboxes, oauth_pending
from mailoauth.store.sql_state import mailbox_id

__all__ = ["PendingMethods", "StoredPending"]

_T = oauth_pending
_VERIFIER: Final = "code_verifier"


@dataclass(frozen=True, kw_only=True)
class StoredPending:
    """One authorization request waiting for the provider's answer."""

    state_hash: str
    mailbox: str
    code_verifier: Secret = field(repr=False)
    redirect_uri: str
    scopes: tuple[str, ...]
    session_hash: str | None
    initiator: str  # "admin NAME" or "api key NAME", for the audit trail and the log
    created_at: datetime
    expires_at: datetime


class PendingMethods:
    """Mixed into :class:`~mailoauth.store.sql.SqlStore`; each method is one transaction."""

    _engine: Engine
    _write: Callable[[], AbstractContextManager[Connection]]  # SqlStore's, checks the key
    _seal: Callable[[str, str, Mapping[str, str]], bytes | None]
    _unseal: Callable[[str, str, bytes | None], dict[str, str]]

    def add_pending(self, pending: StoredPending) -> None:
        """Keep a new request; expired requests (of any mailbox) are dropped on the way."""
        with self._write() as conn:
            _drop_expired(conn, pending.created_at)
            conn.execute(
                sa.insert(_T).values(
                    state_hash=pending.state_hash,
                    mailbox_id=mailbox_id(conn, pending.mailbox),
                    redirect_uri=pending.redirect_uri,
                    scopes=json.dumps(list(pending.scopes)),
                    session_hash=pending.session_hash,
                    initiator=pending.initiator,
                    secrets=self._seal(
                        _T.name, pending.state_hash, {_VERIFIER: pending.code_verifier.reveal()}
                    ),
                    created_at=pending.created_at,
                    expires_at=pending.expires_at,
                )
            )

    def take_pending(self, state_hash: str) -> StoredPending | None:
        """The request with that state, deleted as it is read (None: unknown or used)."""
        query = sa.select(
            _T.c.id,
            _T.c.state_hash,
            mailboxes.c.name.label("mailbox"),
            _T.c.redirect_uri,
            _T.c.scopes,
            _T.c.session_hash,
            _T.c.initiator,
            _T.c.secrets,
            _T.c.created_at,
            _T.c.expires_at,
        ).join_from(_T, mailboxes, _T.c.mailbox_id == mailboxes.c.id)
        with self._write() as conn:
            row = conn.execute(query.where(_T.c.state_hash == state_hash)).first()
            if row is None:
                return None
            if conn.execute(sa.delete(_T).where(_T.c.id == row.id)).rowcount != 1:
                return None  # another node took it between our read and delete
            secrets = self._unseal(_T.name, row.state_hash, row.secrets)
            return StoredPending(
                state_hash=row.state_hash,
                mailbox=row.mailbox,
                code_verifier=Secret(secrets[_VERIFIER]),
                redirect_uri=row.redirect_uri,
                scopes=tuple(json.loads(row.scopes)),
                session_hash=row.session_hash,
                initiator=row.initiator,
                created_at=row.created_at,
                expires_at=row.expires_at,
            )


def _drop_expired(conn: Connection, now: datetime) -> None:
    conn.execute(sa.delete(_T).where(_T.c.expires_at < now))
