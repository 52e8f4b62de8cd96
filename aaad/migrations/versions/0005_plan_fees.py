"""Plan fees: when a user's plan began, when its next fee is due, since when a plan has a fee.

- ``users.plan_since``: the instant the user's current plan was assigned (the
  anchor of its fee cycles; DESIGN §7). Users that have a plan today get
  their row's ``updated_at``, the last change, which is no earlier than the
  assignment. No plan had a fee before this revision, and no cycle before a
  plan's ``fee_since`` is billed, so nobody is billed for the past.
- ``users.next_fee_at``: the start of the next fee cycle (or the assignment,
  for a partial first cycle and the setup fee) not billed yet; NULL when the
  plan has no fee. Indexed, so the billing job reads only the users it has
  work for, whatever their number.
- ``plans.fee_since``: when the plan got its current fee terms. Cycles that
  began before it are not billed (a fee added to a plan in use does not
  reach back).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("plan_since", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("next_fee_at", sa.BigInteger, nullable=True))
        batch.create_index("ix_users_next_fee_at", ["next_fee_at"])
    with op.batch_alter_table("plans") as batch:
        batch.add_column(sa.Column("fee_since", sa.BigInteger, nullable=True))
    users = sa.table("users", sa.column("plan", sa.String),
                     sa.column("plan_since", sa.BigInteger),
                     sa.column("updated_at", sa.BigInteger))
    op.execute(users.update().where(users.c.plan.is_not(None))
               .values(plan_since=users.c.updated_at))


def downgrade() -> None:
    with op.batch_alter_table("plans") as batch:
        batch.drop_column("fee_since")
    with op.batch_alter_table("users") as batch:
        batch.drop_index("ix_users_next_fee_at")
        batch.drop_column("next_fee_at")
        batch.drop_column("plan_since")
