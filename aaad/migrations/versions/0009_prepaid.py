"""Prepaid billing: ``users.billing`` (``postpaid``, the default and the
behaviour before, or ``prepaid``), ``users.suspended_at`` (a prepaid user with
a charge the balance could not pay), ``charges.paid`` (what of a charge the
balance paid). Existing charges are marked paid: they were billed postpaid.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # users keeps AUTOINCREMENT on SQLite (0004) should batch mode rebuild it.
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("billing", sa.String(8), nullable=False,
                                   server_default=sa.text("'postpaid'")))
        batch.add_column(sa.Column("suspended_at", sa.BigInteger, nullable=True))
    with op.batch_alter_table("charges") as batch:
        batch.add_column(sa.Column("paid", sa.BigInteger, nullable=False,
                                   server_default=sa.text("0")))
    charges = sa.table("charges", sa.column("paid", sa.BigInteger),
                       sa.column("amount", sa.BigInteger))
    op.execute(charges.update().values(paid=charges.c.amount))


def downgrade() -> None:
    with op.batch_alter_table("charges") as batch:
        batch.drop_column("paid")
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("suspended_at")
        batch.drop_column("billing")
