"""The durable outbound queue: one row per accepted message (raw bytes and envelope),
its delivery status, lease, attempts and last error.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "outbound_messages",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("mailbox_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("sender", sa.Text, nullable=False),
        sa.Column("recipients", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbound_messages"),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name="fk_outbound_messages_mailbox_id_mailboxes",
            ondelete="RESTRICT",
        ),
    )
    op.create_index("ix_outbound_messages_mailbox_id", "outbound_messages", ["mailbox_id"])
    op.create_index("ix_outbound_messages_due", "outbound_messages", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_index("ix_outbound_messages_due", table_name="outbound_messages")
    op.drop_index("ix_outbound_messages_mailbox_id", table_name="outbound_messages")
    op.drop_table("outbound_messages")
