"""Hotspot tickets (``aaad voucher create --login``): ``users.ticket_batch`` (the
batch a ticket was made in; NULL: an ordinary user), ``users.valid_s`` (how
long it is valid from its first login), ``users.first_login_at`` (when that
was; NULL: unused) and ``users.expires_at`` (the instant from which it no
longer logs in: a fixed end, lowered to ``first_login_at + valid_s`` by the
first login; indexed for the sweeper's look for sessions of tickets that just
ended). See core/quotas/tickets.py.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # users keeps AUTOINCREMENT on SQLite (0004) should batch mode rebuild it.
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("ticket_batch", sa.String(32), nullable=True))
        batch.add_column(sa.Column("valid_s", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("first_login_at", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("expires_at", sa.BigInteger, nullable=True))
        batch.create_index("ix_users_ticket_batch", ["ticket_batch"])
        batch.create_index("ix_users_expires_at", ["expires_at"])


def downgrade() -> None:
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_index("ix_users_expires_at")
        batch.drop_index("ix_users_ticket_batch")
        batch.drop_column("expires_at")
        batch.drop_column("first_login_at")
        batch.drop_column("valid_s")
        batch.drop_column("ticket_batch")
