"""Scheduled custom charges and scheduled plan changes.

- ``scheduled_charges``: a charge on a user once, or every month, quarter or
  year from a local start date, optionally until a local date (inclusive);
  ``next_at`` (indexed) is the next occurrence not billed yet.
- ``plan_changes``: a plan change for a later instant ``at`` (indexed),
  made by the fee job when it comes; ``done_at`` / ``cancelled_at`` record
  what became of it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduled_charges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("user_name", sa.String(320), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("every", sa.String(16), nullable=False),
        sa.Column("start_date", sa.String(10), nullable=False),
        sa.Column("until_date", sa.String(10), nullable=True),
        sa.Column("next_at", sa.BigInteger, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("cancelled_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_scheduled_charges_next_at", "scheduled_charges", ["next_at"])
    op.create_index("ix_scheduled_charges_user_id", "scheduled_charges", ["user_id"])
    op.create_table(
        "plan_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, nullable=False),
        sa.Column("user_name", sa.String(320), nullable=False),
        sa.Column("plan", sa.String(64), nullable=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("done_at", sa.BigInteger, nullable=True),
        sa.Column("cancelled_at", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_plan_changes_at", "plan_changes", ["at"])
    op.create_index("ix_plan_changes_user_id", "plan_changes", ["user_id"])


def downgrade() -> None:
    op.drop_table("plan_changes")
    op.drop_table("scheduled_charges")
