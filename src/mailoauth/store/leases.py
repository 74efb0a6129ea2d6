"""Refresh leases: at most one refresh per mailbox at a time, across processes and nodes.

DESIGN.md invariant 4. Holding the database's write lock for the length of an HTTP call
to a token endpoint would stall every other writer, so the token service instead *leases*
the right to refresh: a row (mailbox, owner, until) taken and released in two short write
transactions, which the store's write lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL
advisory lock) makes atomic. A lease expires on its own, so a process that dies while
refreshing blocks the others for at most the lease's time to live.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mailoauth.store.schema import refresh_leases

__all__ = ["claim", "release"]


def claim(conn: Connection, mailbox_id: int, owner: str, *, now: datetime, until: datetime) -> bool:
    """Take (or extend) the lease unless another owner holds an unexpired one."""
    row = conn.execute(
        sa.select(refresh_leases.c.owner, refresh_leases.c.until).where(
            refresh_leases.c.mailbox_id == mailbox_id
        )
    ).first()
    if row is None:
        conn.execute(
            sa.insert(refresh_leases).values(mailbox_id=mailbox_id, owner=owner, until=until)
        )
        return True
    if row.owner != owner and row.until > now:
        return False
    conn.execute(
        sa.update(refresh_leases)
        .where(refresh_leases.c.mailbox_id == mailbox_id)
        .values(owner=owner, until=until)
    )
    return True


def release(conn: Connection, mailbox_id: int, owner: str) -> None:
    """Give the lease back, if ``owner`` still holds it."""
    conn.execute(
        sa.delete(refresh_leases).where(
            refresh_leases.c.mailbox_id == mailbox_id, refresh_leases.c.owner == owner
        )
    )
