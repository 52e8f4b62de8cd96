"""Free credit per renewal: ``users.next_free_at`` and ``balances.free_credit``.

- ``users.next_free_at``: the next renewal whose free credit is not granted
  yet (the assignment, for the first grant); NULL when the plan grants none.
  Indexed, so the grant job reads only the users it has work for. Users that
  have a plan today get NULL: no plan had free credit before this revision,
  and a plan that gets it sets its users' instant (store/plans.save_plan).
- ``balances.free_credit``: the part of the balance that is free credit not
  spent yet. Debits take from it first; a renewal expires or carries it
  (core/billing/allowance.py). Kept with the balance, so it is known exactly
  whatever the history, without summing ledger lines.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("next_free_at", sa.BigInteger, nullable=True))
        batch.create_index("ix_users_next_free_at", ["next_free_at"])
    with op.batch_alter_table("balances") as batch:
        batch.add_column(sa.Column("free_credit", sa.BigInteger, nullable=False,
                                   server_default=sa.text("0")))


def downgrade() -> None:
    with op.batch_alter_table("balances") as batch:
        batch.drop_column("free_credit")
    with op.batch_alter_table("users") as batch:
        batch.drop_index("ix_users_next_free_at")
        batch.drop_column("next_free_at")
