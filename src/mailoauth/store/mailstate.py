"""What fetching and debugging remember per mailbox: IMAP cursors, seen ids, transcripts.

Functions on an open connection, called by :class:`~mailoauth.store.sql.SqlStore` inside
its transactions (like :mod:`.leases`). Nothing here is secret: transcripts arrive
already redacted (:mod:`mailoauth.mail.transcript`), ids and UIDs are not credentials.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mailoauth.models import TranscriptLine
from mailoauth.store.schema import fetch_cursors, fetch_seen, transcript_lines

__all__ = [
    "TRANSCRIPT_KEEP",
    "add_seen",
    "append_transcript",
    "clear_transcript",
    "cursor",
    "forget",
    "keep_seen",
    "put_cursor",
    "read_transcript",
    "seen",
]

#: Lines kept per mailbox; older ones are dropped as new ones arrive.
TRANSCRIPT_KEEP: Final = 5000
_CHUNK: Final = 500  # ids per DELETE ... IN (...), well under every driver's limit


def cursor(conn: Connection, mailbox_id: int, folder: str) -> tuple[str, str] | None:
    row = conn.execute(
        sa.select(fetch_cursors.c.validity, fetch_cursors.c.position).where(
            fetch_cursors.c.mailbox_id == mailbox_id, fetch_cursors.c.folder == folder
        )
    ).first()
    return None if row is None else (row.validity, row.position)


def put_cursor(
    conn: Connection, mailbox_id: int, folder: str, validity: str, position: str, now: datetime
) -> None:
    where = (fetch_cursors.c.mailbox_id == mailbox_id, fetch_cursors.c.folder == folder)
    values = {"validity": validity, "position": position, "updated_at": now}
    if conn.execute(sa.update(fetch_cursors).where(*where).values(**values)).rowcount == 0:
        conn.execute(
            sa.insert(fetch_cursors).values(mailbox_id=mailbox_id, folder=folder, **values)
        )


def seen(conn: Connection, mailbox_id: int, folder: str) -> set[str]:
    return set(
        conn.execute(
            sa.select(fetch_seen.c.item).where(
                fetch_seen.c.mailbox_id == mailbox_id, fetch_seen.c.folder == folder
            )
        ).scalars()
    )


def add_seen(conn: Connection, mailbox_id: int, folder: str, item: str) -> None:
    known = conn.execute(
        sa.select(fetch_seen.c.item).where(
            fetch_seen.c.mailbox_id == mailbox_id,
            fetch_seen.c.folder == folder,
            fetch_seen.c.item == item,
        )
    ).first()
    if known is None:
        conn.execute(sa.insert(fetch_seen).values(mailbox_id=mailbox_id, folder=folder, item=item))


def keep_seen(conn: Connection, mailbox_id: int, folder: str, present: Collection[str]) -> int:
    """Forget the ids the server no longer lists; returns how many were forgotten."""
    gone = sorted(seen(conn, mailbox_id, folder) - set(present))
    for start in range(0, len(gone), _CHUNK):
        conn.execute(
            sa.delete(fetch_seen).where(
                fetch_seen.c.mailbox_id == mailbox_id,
                fetch_seen.c.folder == folder,
                fetch_seen.c.item.in_(gone[start : start + _CHUNK]),
            )
        )
    return len(gone)


def append_transcript(
    conn: Connection, mailbox_id: int, lines: Sequence[TranscriptLine], keep: int
) -> None:
    if lines:
        conn.execute(
            sa.insert(transcript_lines),
            [
                {
                    "mailbox_id": mailbox_id,
                    "at": line.at,
                    "session": line.session[:32],
                    "protocol": line.protocol[:16],
                    "direction": line.direction[:1],
                    "text": line.text,
                }
                for line in lines
            ],
        )
    # The ring: drop everything older than the newest ``keep`` lines.
    oldest_kept = conn.execute(
        sa.select(transcript_lines.c.id)
        .where(transcript_lines.c.mailbox_id == mailbox_id)
        .order_by(transcript_lines.c.id.desc())
        .offset(keep - 1)
        .limit(1)
    ).scalar()
    if oldest_kept is not None:
        conn.execute(
            sa.delete(transcript_lines).where(
                transcript_lines.c.mailbox_id == mailbox_id, transcript_lines.c.id < oldest_kept
            )
        )


def read_transcript(conn: Connection, mailbox_id: int, limit: int) -> list[TranscriptLine]:
    """The newest ``limit`` lines, oldest first."""
    rows = conn.execute(
        sa.select(transcript_lines)
        .where(transcript_lines.c.mailbox_id == mailbox_id)
        .order_by(transcript_lines.c.id.desc())
        .limit(limit)
    ).all()
    return [
        TranscriptLine(row.at, row.session, row.protocol, row.direction, row.text)
        for row in reversed(rows)
    ]


def clear_transcript(conn: Connection, mailbox_id: int) -> int:
    return conn.execute(
        sa.delete(transcript_lines).where(transcript_lines.c.mailbox_id == mailbox_id)
    ).rowcount


def forget(conn: Connection, mailbox_id: int) -> None:
    """Remove everything of a mailbox (it is being deleted; the foreign keys cascade too)."""
    for table in (fetch_cursors, fetch_seen, transcript_lines):
        conn.execute(sa.delete(table).where(table.c.mailbox_id == mailbox_id))
