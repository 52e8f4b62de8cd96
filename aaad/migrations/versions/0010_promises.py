"""Promised payments: ``balances.promise_amount`` and ``promise_expires_at``, a
temporary raise of what a prepaid user may spend, until it expires or top-ups
pay it.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("balances") as batch:
        batch.add_column(sa.Column("promise_amount", sa.BigInteger, nullable=False,
                                   server_default=sa.text("0")))
        batch.add_column(sa.Column("promise_expires_at", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("balances") as batch:
        batch.drop_column("promise_expires_at")
        batch.drop_column("promise_amount")
