"""The relay users' mode: ``queue`` (the default: stored, then delivered) or
``passthrough`` (the SMTP transaction relayed live). Existing logins become ``queue``,
which is what they did before.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # NOT NULL with a server default: one ALTER TABLE on SQLite and PostgreSQL alike,
    # and every existing row reads "queue"
    op.add_column(
        "relay_users",
        sa.Column("mode", sa.String(16), nullable=False, server_default="queue"),
    )


def downgrade() -> None:
    with op.batch_alter_table("relay_users") as batch:  # SQLite before 3.35: a table copy
        batch.drop_column("mode")
