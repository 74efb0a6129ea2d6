"""The REST API's keys: rows of ``api_keys`` and SqlStore's methods over them.

A row holds a key's name (who the caller is, in log lines), the public ``prefix`` that
finds the row and is shown in listings, a *verifier* of the whole key
(:mod:`.verifiers`: salted HMAC-SHA256; never the key), the scopes granted, and when it
was created, last used and revoked. What a key looks like and what its scopes allow is
:mod:`mailoauth.web.api.keys`' business. Like the relay's logins, these transactions need
no store key: a verifier without its key lets nobody in.

A revoked key keeps its row, so listings still say who had which key and when it was
last used; its name cannot be taken again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from mailoauth.errors import ConfigError, NotFoundError
from mailoauth.store.engine import read_transaction, write_transaction
from mailoauth.store.schema import api_keys

__all__ = ["ApiKey", "ApiKeyMethods"]

_T = api_keys
_KIND = "api-key"


@dataclass(frozen=True)
class ApiKey:
    """One client's key to the REST API (without the key itself)."""

    name: str
    prefix: str
    verifier: str = field(repr=False)
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None = None
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


_SELECT = sa.select(
    _T.c.name,
    _T.c.prefix,
    _T.c.verifier,
    _T.c.scopes,
    _T.c.created_at,
    _T.c.last_used_at,
    _T.c.revoked_at,
)


def _key(row: Any) -> ApiKey:
    values = dict(row._mapping)
    values["scopes"] = tuple(json.loads(values["scopes"]))
    return ApiKey(**values)


def _get(conn: Connection, name: str) -> ApiKey:
    row = conn.execute(_SELECT.where(_T.c.name == name)).first()
    if row is None:
        raise NotFoundError(_KIND, name)
    return _key(row)


class ApiKeyMethods:
    """Mixed into :class:`~mailoauth.store.sql.SqlStore`; each method is one transaction."""

    _engine: Engine

    def list_api_keys(self) -> list[ApiKey]:
        with read_transaction(self._engine) as conn:
            return [_key(row) for row in conn.execute(_SELECT.order_by(_T.c.name))]

    def get_api_key(self, name: str) -> ApiKey:
        with read_transaction(self._engine) as conn:
            return _get(conn, name)

    def find_api_key(self, prefix: str) -> ApiKey | None:
        """The key whose public prefix is ``prefix`` (revoked or not), or None."""
        with read_transaction(self._engine) as conn:
            row = conn.execute(_SELECT.where(_T.c.prefix == prefix)).first()
            return None if row is None else _key(row)

    def add_api_key(self, key: ApiKey) -> None:
        """Store a new key; ConfigError when its name (or, by a 1 in 2^32 chance, its
        prefix) is taken."""
        with write_transaction(self._engine) as conn:
            taken = conn.execute(
                sa.select(_T.c.name, _T.c.revoked_at).where(_T.c.name == key.name)
            ).first()
            if taken is not None:
                was = "a revoked key had it" if taken.revoked_at is not None else "it is in use"
                raise ConfigError(
                    _KIND, f"{key.name!r} exists already ({was})", "pick another name"
                )
            try:
                conn.execute(
                    sa.insert(_T).values(
                        name=key.name,
                        prefix=key.prefix,
                        verifier=key.verifier,
                        scopes=json.dumps(list(key.scopes)),
                        created_at=key.created_at,
                        last_used_at=key.last_used_at,
                        revoked_at=key.revoked_at,
                    )
                )
            except IntegrityError as exc:  # a concurrent add, or a prefix collision
                raise ConfigError(_KIND, f"{key.name!r} could not be stored", "try again") from exc

    def revoke_api_key(self, name: str, *, now: datetime) -> ApiKey:
        """Revoke the key (it stops working at once); a revoked key stays revoked as it was."""
        with write_transaction(self._engine) as conn:
            _get(conn, name)
            conn.execute(
                sa.update(_T)
                .where(_T.c.name == name, _T.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            return _get(conn, name)

    def touch_api_key(self, name: str, *, now: datetime) -> None:
        """Record that the key was used at ``now`` (callers throttle: one write a minute)."""
        with write_transaction(self._engine) as conn:
            conn.execute(sa.update(_T).where(_T.c.name == name).values(last_used_at=now))
