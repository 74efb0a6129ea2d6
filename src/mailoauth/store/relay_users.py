"""The relay's local logins: rows of ``relay_users`` and SqlStore's methods over them.

A row binds one application's login name to one mailbox and holds a *verifier* of its
generated password (see :mod:`mailoauth.relay.users` for why a salted SHA-256 is the right
hash for it), never the password, and its :class:`RelayMode`. The verifier is not a secret
that needs the store's key: without the password it lets nobody in, so these transactions
need no key. Rows go with their mailbox (``ON DELETE CASCADE``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from mailoauth.errors import ConfigError, NotFoundError
from mailoauth.store.engine import read_transaction, write_transaction
from mailoauth.store.schema import mailboxes, relay_users
from mailoauth.store.sql_state import mailbox_id

__all__ = ["RelayMode", "RelayUser", "RelayUserMethods"]

_T = relay_users
_KIND = "relay-user"


class RelayMode(StrEnum):
    """What the SMTP relay does with a login's mail (docs/relay.md, "Modes")."""

    QUEUE = "queue"  # committed to the outbound queue before 250, delivered after
    PASSTHROUGH = "passthrough"  # the transaction relayed live; the upstream's replies


@dataclass(frozen=True)
class RelayUser:
    """One application's login to the relay. ``allow_from`` empty: the mailbox's addresses."""

    name: str
    mailbox: str
    verifier: str = field(repr=False)
    allow_from: tuple[str, ...]
    protocols: tuple[str, ...]
    created_at: datetime
    password_set_at: datetime
    mode: RelayMode = RelayMode.QUEUE


_SELECT = sa.select(
    _T.c.name,
    mailboxes.c.name.label("mailbox"),
    _T.c.verifier,
    _T.c.allow_from,
    _T.c.protocols,
    _T.c.created_at,
    _T.c.password_set_at,
    _T.c.mode,
).join_from(_T, mailboxes, _T.c.mailbox_id == mailboxes.c.id)


def _user(row: Any) -> RelayUser:
    values = dict(row._mapping)
    values["allow_from"] = tuple(json.loads(values["allow_from"]))
    values["protocols"] = tuple(json.loads(values["protocols"]))
    values["mode"] = RelayMode(values["mode"])
    return RelayUser(**values)


def _get(conn: Connection, name: str) -> RelayUser:
    row = conn.execute(_SELECT.where(_T.c.name == name)).first()
    if row is None:
        raise NotFoundError(_KIND, name)
    return _user(row)


class RelayUserMethods:
    """Mixed into :class:`~mailoauth.store.sql.SqlStore`; each method is one transaction."""

    _engine: Engine

    def list_relay_users(self) -> list[RelayUser]:
        with read_transaction(self._engine) as conn:
            return [_user(row) for row in conn.execute(_SELECT.order_by(_T.c.name))]

    def get_relay_user(self, name: str) -> RelayUser:
        with read_transaction(self._engine) as conn:
            return _get(conn, name)

    def add_relay_user(self, user: RelayUser) -> None:
        """Store a new login; ConfigError when the name is taken."""
        with write_transaction(self._engine) as conn:
            owner = mailbox_id(conn, user.mailbox)
            if conn.execute(sa.select(_T.c.id).where(_T.c.name == user.name)).first():
                raise ConfigError(
                    _KIND,
                    f"{user.name!r} exists already",
                    f"pick another name, or `mailoauth relay-user remove {user.name}` first",
                )
            try:
                conn.execute(
                    sa.insert(_T).values(
                        name=user.name,
                        mailbox_id=owner,
                        verifier=user.verifier,
                        allow_from=json.dumps(list(user.allow_from)),
                        protocols=json.dumps(list(user.protocols)),
                        created_at=user.created_at,
                        password_set_at=user.password_set_at,
                        mode=user.mode.value,
                    )
                )
            except IntegrityError as exc:  # a concurrent add of the same name
                raise ConfigError(_KIND, f"{user.name!r} exists already", "") from exc

    def set_relay_verifier(self, name: str, verifier: str, *, now: datetime) -> RelayUser:
        """Replace the login's password verifier (the old password stops working)."""
        with write_transaction(self._engine) as conn:
            _get(conn, name)
            conn.execute(
                sa.update(_T)
                .where(_T.c.name == name)
                .values(verifier=verifier, password_set_at=now)
            )
            return _get(conn, name)

    def set_relay_mode(self, name: str, mode: RelayMode) -> RelayUser:
        """Change the login's mode; it applies from the application's next login."""
        with write_transaction(self._engine) as conn:
            if (
                conn.execute(
                    sa.update(_T).where(_T.c.name == name).values(mode=mode.value)
                ).rowcount
                == 0
            ):
                raise NotFoundError(_KIND, name)
            return _get(conn, name)

    def delete_relay_user(self, name: str) -> None:
        with write_transaction(self._engine) as conn:
            if conn.execute(sa.delete(_T).where(_T.c.name == name)).rowcount == 0:
                raise NotFoundError(_KIND, name)
