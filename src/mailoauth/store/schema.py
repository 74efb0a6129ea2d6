"""The tables, as SQLAlchemy Core metadata: the code's view of the schema.

The migrations in ``migrations/versions`` are the schema's history and do not import this
module (a migration must not change when this file does); ``tests/unit/test_store_sqlite``
and the PostgreSQL test compare the two so they cannot drift.

Each object row keeps what is queried in columns (name, kind, provider, grant status and
times), the rest of its public fields as JSON text (``data``), and all its secrets as one
encrypted blob (``secrets``; NULL when it has none). JSON is stored as text on both
databases because nothing queries inside it and text round-trips byte for byte.

Times are ``DateTime(timezone=True)`` behind :class:`UtcDateTime`, which always hands back
timezone-aware UTC values: SQLite keeps no zone, PostgreSQL returns the session's zone.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = [
    "META_KEY_ID",
    "UtcDateTime",
    "fetch_cursors",
    "fetch_seen",
    "grants",
    "mailboxes",
    "meta",
    "metadata",
    "outbound_messages",
    "providers",
    "refresh_leases",
    "relay_users",
    "transcript_lines",
]

META_KEY_ID: Final = "key_id"

NAMING: Final = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime, stored as UTC, read back as UTC on every database."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.utcoffset() is None:
            raise ValueError("naive datetimes are not stored; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite: stored as UTC without a zone
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


metadata: Final = sa.MetaData(naming_convention=NAMING)

meta: Final = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

providers: Final = sa.Table(
    "providers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(63), nullable=False, unique=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("secrets", sa.LargeBinary, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

mailboxes: Final = sa.Table(
    "mailboxes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(63), nullable=False, unique=True),
    sa.Column(
        "provider_id",
        sa.Integer,
        sa.ForeignKey("providers.id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("secrets", sa.LargeBinary, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

grants: Final = sa.Table(
    "grants",
    metadata,
    sa.Column(
        "mailbox_id",
        sa.Integer,
        sa.ForeignKey("mailboxes.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=True, index=True),
    sa.Column("refreshed_at", UtcDateTime, nullable=True),
    sa.Column("last_error_at", UtcDateTime, nullable=True),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("secrets", sa.LargeBinary, nullable=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

#: Who is refreshing a mailbox's tokens right now, across processes and nodes: the
#: single-flight lease of the token service (DESIGN.md invariant 4). A separate table, so a
#: lease exists before the first grant does and never touches the grant's sealed row.
refresh_leases: Final = sa.Table(
    "refresh_leases",
    metadata,
    sa.Column(
        "mailbox_id",
        sa.Integer,
        sa.ForeignKey("mailboxes.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("owner", sa.String(128), nullable=False),
    sa.Column("until", UtcDateTime, nullable=False),
)


def _mailbox_fk() -> sa.Column[int]:
    return sa.Column(
        "mailbox_id",
        sa.Integer,
        sa.ForeignKey("mailboxes.id", ondelete="CASCADE"),
        primary_key=True,
    )


#: IMAP: per folder, the UIDVALIDITY and the highest UID delivered (mail/fetched.py).
fetch_cursors: Final = sa.Table(
    "fetch_cursors",
    metadata,
    _mailbox_fk(),
    sa.Column("folder", sa.String(255), primary_key=True),
    sa.Column("validity", sa.String(64), nullable=False),
    sa.Column("position", sa.String(64), nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

#: POP3 UIDLs, Graph and Gmail message ids already delivered, per folder.
fetch_seen: Final = sa.Table(
    "fetch_seen",
    metadata,
    _mailbox_fk(),
    sa.Column("folder", sa.String(255), primary_key=True),
    sa.Column("item", sa.String(255), primary_key=True),
)

#: The debug transcripts: a bounded ring of redacted lines per mailbox.
transcript_lines: Final = sa.Table(
    "transcript_lines",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "mailbox_id",
        sa.Integer,
        sa.ForeignKey("mailboxes.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("session", sa.String(32), nullable=False),
    sa.Column("protocol", sa.String(16), nullable=False),
    sa.Column("direction", sa.String(1), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
)


#: The durable outbound queue (``mailoauth.queue``): a message is accepted once its row is
#: committed. ``next_attempt_at`` is when a ``queued`` message is due, and while it is
#: ``sending`` when the lease of ``lease_owner`` runs out (then anyone may take it over), so
#: one index answers "what is due?". ``queued_at`` starts the dead-letter age (reset by a
#: manual retry). The raw bytes are mail content, not secrets: stored as they are.
outbound_messages: Final = sa.Table(
    "outbound_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "mailbox_id",
        sa.Integer,
        sa.ForeignKey("mailboxes.id", ondelete="RESTRICT"),
        nullable=False,
        index=True,
    ),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("next_attempt_at", UtcDateTime, nullable=False),
    sa.Column("lease_owner", sa.String(128), nullable=True),
    sa.Column("message_id", sa.Text, nullable=False),
    sa.Column("sender", sa.Text, nullable=False),
    sa.Column("recipients", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("queued_at", UtcDateTime, nullable=False),
    sa.Column("last_attempt_at", UtcDateTime, nullable=True),
    sa.Column("sent_at", UtcDateTime, nullable=True),
    sa.Index("ix_outbound_messages_due", "status", "next_attempt_at"),
)


#: The relay's local logins (``mailoauth.relay.users``): one per application, bound to one
#: mailbox. ``verifier`` is a salted SHA-256 of a random password (never the password);
#: ``allow_from`` (JSON list, empty: the mailbox's addresses) and ``protocols`` (JSON list).
relay_users: Final = sa.Table(
    "relay_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column(
        "mailbox_id",
        sa.Integer,
        sa.ForeignKey("mailboxes.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("verifier", sa.String(200), nullable=False),
    sa.Column("allow_from", sa.Text, nullable=False),
    sa.Column("protocols", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("password_set_at", UtcDateTime, nullable=False),
)
