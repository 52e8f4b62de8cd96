"""Wholesale rating: ``tenants.wholesale_rate_table`` (the operator's rate table a
tenant's customers' calls are also rated at, for the reseller's bill; NULL:
none), ``calls.wholesale_cost`` (that cost, 1/10,000 units; NULL: not rated
wholesale) and ``closed_periods.tenant_lines`` (each tenant's export of the
month as it was at closing, JSON by tenant name; NULL for months closed before).

Revision ID: 0019
Revises: 0017
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("wholesale_rate_table", sa.String(64), nullable=True))
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("wholesale_cost", sa.BigInteger, nullable=True))
    with op.batch_alter_table("closed_periods") as batch:
        batch.add_column(sa.Column("tenant_lines", sa.Text, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("closed_periods") as batch:
        batch.drop_column("tenant_lines")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("wholesale_cost")
    with op.batch_alter_table("tenants", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("wholesale_rate_table")
