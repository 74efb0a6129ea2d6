"""Mail state: fetch cursors (IMAP), seen ids (POP3, Graph, Gmail), debug transcripts.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def _mailbox_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["mailbox_id"],
        ["mailboxes.id"],
        name=f"fk_{table}_mailbox_id_mailboxes",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "fetch_cursors",
        sa.Column("mailbox_id", sa.Integer, nullable=False),
        sa.Column("folder", sa.String(255), nullable=False),
        sa.Column("validity", sa.String(64), nullable=False),
        sa.Column("position", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mailbox_id", "folder", name="pk_fetch_cursors"),
        _mailbox_fk("fetch_cursors"),
    )
    op.create_table(
        "fetch_seen",
        sa.Column("mailbox_id", sa.Integer, nullable=False),
        sa.Column("folder", sa.String(255), nullable=False),
        sa.Column("item", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("mailbox_id", "folder", "item", name="pk_fetch_seen"),
        _mailbox_fk("fetch_seen"),
    )
    op.create_table(
        "transcript_lines",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("mailbox_id", sa.Integer, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("session", sa.String(32), nullable=False),
        sa.Column("protocol", sa.String(16), nullable=False),
        sa.Column("direction", sa.String(1), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_transcript_lines"),
        _mailbox_fk("transcript_lines"),
    )
    op.create_index("ix_transcript_lines_mailbox_id", "transcript_lines", ["mailbox_id"])


def downgrade() -> None:
    op.drop_index("ix_transcript_lines_mailbox_id", table_name="transcript_lines")
    op.drop_table("transcript_lines")
    op.drop_table("fetch_seen")
    op.drop_table("fetch_cursors")
