"""Which key the stored data needs, and every sealed blob (for rotation).

``meta.key_id`` records the id of the key that sealed the data. It is written when the first
store opens (before any secret exists) and changed only by key rotation, in the transaction
that re-seals every blob. Each blob also carries its key id, so a database whose ``meta``
row was lost still says which key it needs.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mailoauth.store.crypto import blob_key_id
from mailoauth.store.schema import META_KEY_ID, grants, mailboxes, meta, oauth_pending, providers

__all__ = ["record_key_id", "sealed_blobs", "stored_key_id"]


def stored_key_id(conn: Connection) -> str | None:
    """The id of the key the stored secrets need: ``meta.key_id``, else any blob's."""
    recorded = conn.scalar(sa.select(meta.c.value).where(meta.c.key == META_KEY_ID))
    if recorded is not None:
        return str(recorded)
    for table in (providers, mailboxes, grants):
        blob = conn.scalar(sa.select(table.c.secrets).where(table.c.secrets.is_not(None)))
        if blob is not None:
            return blob_key_id(blob)
    return None


def record_key_id(conn: Connection, key_id: str) -> None:
    updated = conn.execute(
        sa.update(meta).where(meta.c.key == META_KEY_ID).values(value=key_id)
    ).rowcount
    if not updated:
        conn.execute(sa.insert(meta).values(key=META_KEY_ID, value=key_id))


def sealed_blobs(conn: Connection) -> list[tuple[sa.Table, int, str, bytes]]:
    """Every sealed blob as ``(table, primary key, row name, blob)``."""
    queries = (
        (providers, sa.select(providers.c.id, providers.c.name, providers.c.secrets)),
        (mailboxes, sa.select(mailboxes.c.id, mailboxes.c.name, mailboxes.c.secrets)),
        (
            grants,
            sa.select(grants.c.mailbox_id, mailboxes.c.name, grants.c.secrets).join_from(
                grants, mailboxes, grants.c.mailbox_id == mailboxes.c.id
            ),
        ),
        (
            oauth_pending,
            sa.select(oauth_pending.c.id, oauth_pending.c.state_hash, oauth_pending.c.secrets),
        ),
    )
    found: list[tuple[sa.Table, int, str, bytes]] = []
    for table, query in queries:
        for pk, name, blob in conn.execute(query.where(table.c.secrets.is_not(None))):
            found.append((table, pk, name, blob))
    return found
