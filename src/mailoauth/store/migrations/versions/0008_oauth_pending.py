"""Authorizations started in the service (console or API) and not answered yet: the
one-time state (hashed), the PKCE verifier (sealed), and the console session they belong to.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "oauth_pending",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("state_hash", sa.String(64), nullable=False),
        sa.Column("mailbox_id", sa.Integer, nullable=False),
        sa.Column("redirect_uri", sa.Text, nullable=False),
        sa.Column("scopes", sa.Text, nullable=False),
        sa.Column("session_hash", sa.String(64), nullable=True),
        sa.Column("initiator", sa.String(200), nullable=False),
        sa.Column("secrets", sa.LargeBinary, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_oauth_pending"),
        sa.UniqueConstraint("state_hash", name="uq_oauth_pending_state_hash"),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name="fk_oauth_pending_mailbox_id_mailboxes",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_oauth_pending_mailbox_id", "oauth_pending", ["mailbox_id"])


def downgrade() -> None:
    op.drop_index("ix_oauth_pending_mailbox_id", table_name="oauth_pending")
    op.drop_table("oauth_pending")
