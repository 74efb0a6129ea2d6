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
    "admins",
    "api_keys",
    "audit_log",
    "fetch_cursors",
    "fetch_seen",
    "grants",
    "mailboxes",
    "meta",
    "metadata",
    "oauth_pending",
    "outbound_messages",
    "providers",
    "refresh_leases",
    "relay_users",
    "transcript_lines",
    "web_sessions",
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
    # ``queue`` (store, then deliver) or ``passthrough`` (relay the transaction live)
    sa.Column("mode", sa.String(16), nullable=False, server_default="queue"),
)


#: The console's administrators (``mailoauth.web.console.accounts``): ``password_hash`` is
#: a scrypt hash with its parameters in the text, never the password.
admins: Final = sa.Table(
    "admins",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("password_set_at", UtcDateTime, nullable=False),
    sa.Column("last_login_at", UtcDateTime, nullable=True),
)

#: Console sessions, keyed by the SHA-256 (hex) of the session cookie; each has its CSRF
#: secret, the time it was last used (idle expiry) and its absolute end.
web_sessions: Final = sa.Table(
    "web_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column(
        "admin_id",
        sa.Integer,
        sa.ForeignKey("admins.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("csrf_secret", sa.String(64), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("last_seen_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)

#: What admins did: ``admin`` NULL when nobody was logged in (failed login, the CLI);
#: ``object`` names what was acted on; ``source`` the client address or ``cli``. The admin
#: is kept by name, so the log outlives the admin. Never holds a secret.
audit_log: Final = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("admin", sa.String(64), nullable=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("object", sa.String(255), nullable=True),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("source", sa.String(64), nullable=True),
)


#: Authorizations started by the service (console or API) and not answered yet
#: (``mailoauth.web.authorize``). The one-time ``state`` is kept only as its SHA-256; the
#: PKCE verifier is sealed in ``secrets``; ``session_hash`` binds the request to the console
#: session that started it (NULL: started through the API). Rows expire after 10 minutes.
oauth_pending: Final = sa.Table(
    "oauth_pending",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("state_hash", sa.String(64), nullable=False, unique=True),
    sa.Column(
        "mailbox_id",
        sa.Integer,
        sa.ForeignKey("mailboxes.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("redirect_uri", sa.Text, nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),
    sa.Column("session_hash", sa.String(64), nullable=True),
    sa.Column("initiator", sa.String(200), nullable=False),
    sa.Column("secrets", sa.LargeBinary, nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
)


#: The REST API's keys (``mailoauth.web.api.keys``): ``prefix`` finds the row and is shown
#: in listings; ``verifier`` is a salted HMAC-SHA256 of the whole generated key (never the
#: key); ``scopes`` a JSON list; a revoked key keeps its row (``revoked_at``).
api_keys: Final = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False, unique=True),
    sa.Column("verifier", sa.String(200), nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("last_used_at", UtcDateTime, nullable=True),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
)
