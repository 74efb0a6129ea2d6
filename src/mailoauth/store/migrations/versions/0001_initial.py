"""The first schema: meta, providers, mailboxes, grants.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def _timestamps() -> list[sa.Column[object]]:
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_meta"),
    )
    op.create_table(
        "providers",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("secrets", sa.LargeBinary, nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_providers"),
        sa.UniqueConstraint("name", name="uq_providers_name"),
    )
    op.create_table(
        "mailboxes",
        sa.Column("id", sa.Integer, nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("provider_id", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("secrets", sa.LargeBinary, nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name="pk_mailboxes"),
        sa.UniqueConstraint("name", name="uq_mailboxes_name"),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["providers.id"],
            name="fk_mailboxes_provider_id_providers",
            ondelete="RESTRICT",
        ),
    )
    op.create_index("ix_mailboxes_provider_id", "mailboxes", ["provider_id"])
    op.create_table(
        "grants",
        sa.Column("mailbox_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("secrets", sa.LargeBinary, nullable=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mailbox_id", name="pk_grants"),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name="fk_grants_mailbox_id_mailboxes",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_grants_expires_at", "grants", ["expires_at"])
    op.create_table(
        "refresh_leases",
        sa.Column("mailbox_id", sa.Integer, nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("mailbox_id", name="pk_refresh_leases"),
        sa.ForeignKeyConstraint(
            ["mailbox_id"],
            ["mailboxes.id"],
            name="fk_refresh_leases_mailbox_id_mailboxes",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("refresh_leases")
    op.drop_index("ix_grants_expires_at", table_name="grants")
    op.drop_table("grants")
    op.drop_index("ix_mailboxes_provider_id", table_name="mailboxes")
    op.drop_table("mailboxes")
    op.drop_table("providers")
    op.drop_table("meta")
