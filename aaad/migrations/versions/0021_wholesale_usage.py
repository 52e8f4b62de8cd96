"""Wholesale usage prices: ``tenants.wholesale_hour_money`` and
``tenants.wholesale_gb_money`` (1/10,000 units per hour of session time and
per GB, 10^9 octets in + out, of the tenant's customers' usage, for the
reseller's bill; NULL: that part is not billed).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("wholesale_hour_money", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("wholesale_gb_money", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("wholesale_gb_money")
        batch.drop_column("wholesale_hour_money")
