"""Affiliate share: ``users.affiliate_id`` (the account credited a share of this
one's charges of each closed month; NULL: none) and ``users.affiliate_percent``
(the share, decimal text such as ``12.5``).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # users keeps AUTOINCREMENT on SQLite (0004) should batch mode rebuild it.
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("affiliate_id", sa.Integer, nullable=True))
        batch.add_column(sa.Column("affiliate_percent", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("affiliate_percent")
        batch.drop_column("affiliate_id")
