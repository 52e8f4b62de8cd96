"""Suspension by hand: ``users.held_at`` (when ``aaad user suspend`` suspended the
user; NULL: not suspended by hand) and ``users.held_reason`` (the reason given,
shown in the Access-Reject). Kept apart from ``suspended_at`` (non-payment): a
top-up never lifts it, only ``aaad user resume``.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # users keeps AUTOINCREMENT on SQLite (0004) should batch mode rebuild it.
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("held_at", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("held_reason", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("held_reason")
        batch.drop_column("held_at")
