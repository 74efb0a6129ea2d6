"""The relay's local logins: one row per application, bound to a mailbox, with a salted
hash of its generated password, the From addresses it may use and its protocols.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "relay_users",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("mailbox_id", sa.Integer, nullable=False),
        sa.Column("verifier", sa.String(200), nullable=False),
        sa.Column("allow_from", sa.Text, nullable=False),
        sa.Column("protocols", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_relay_users"),
        sa.UniqueConstraint("name", name="uq_relay_users_name"),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name="fk_relay_users_mailbox_id_mailboxes",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_relay_users_mailbox_id", "relay_users", ["mailbox_id"])


def downgrade() -> None:
    op.drop_index("ix_relay_users_mailbox_id", table_name="relay_users")
    op.drop_table("relay_users")
