"""Rating at band boundaries, per-second prices and unrated calls:
``rates.unit`` (``min``: the price is per minute, ``s``: per second; existing
rates are per minute), ``calls.bands`` (the billed seconds per band,
``peak:600,offpeak:600``), ``calls.unit`` (the unit of ``calls.price``; NULL
for unrated calls) and ``calls.unrated`` (why a call has no price:
no_destination, no_caller, no_rate, no_rate_table, inbound, emergency; NULL
for rated calls). CDRs stored before keep NULL in the three new columns.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rates") as batch:
        batch.add_column(sa.Column("unit", sa.String(8), nullable=False, server_default="min"))
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("bands", sa.Text, nullable=True))
        batch.add_column(sa.Column("unit", sa.String(8), nullable=True))
        batch.add_column(sa.Column("unrated", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("unrated")
        batch.drop_column("unit")
        batch.drop_column("bands")
    with op.batch_alter_table("rates") as batch:
        batch.drop_column("unit")
