"""Prepaid credit (balances, ledger, vouchers), rate tables, rated calls, free minutes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NAME = 320


def upgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("direction", sa.String(8), nullable=True))
    op.create_table(
        "balances",
        sa.Column("user_name", sa.String(NAME), nullable=False),
        sa.Column("balance", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("credit_limit", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("user_name", name="pk_balances"),
    )
    op.create_table(
        "ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_name", sa.String(NAME), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ref", sa.String(160), nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("description", sa.String(255), nullable=False, server_default=sa.text("''")),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ledger"),
        sa.UniqueConstraint("ref", name="uq_ledger_ref"),
    )
    op.create_index("ix_ledger_user_name_created_at", "ledger", ["user_name", "created_at"])
    op.create_table(
        "vouchers",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("hint", sa.String(8), nullable=False),
        sa.Column("value", sa.BigInteger, nullable=False),
        sa.Column("batch", sa.String(32), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("redeemed_by", sa.String(NAME), nullable=True),
        sa.Column("redeemed_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_vouchers"),
        sa.UniqueConstraint("code_hash", name="uq_vouchers_code_hash"),
    )
    op.create_table(
        "rate_tables",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("rates", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_rate_tables"),
    )
    op.create_table(
        "rates",
        sa.Column("rate_table", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("band", sa.String(64), nullable=False),
        sa.Column("description", sa.String(128), nullable=False),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("connection_fee", sa.BigInteger, nullable=False),
        sa.Column("first_s", sa.Integer, nullable=False),
        sa.Column("next_s", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("rate_table", "prefix", "band", name="pk_rates"),
    )
    op.create_table(
        "calls",
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("user_name", sa.String(NAME), nullable=False),
        sa.Column("caller", sa.String(128), nullable=False),
        sa.Column("destination", sa.String(128), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=True),
        sa.Column("rate_table", sa.String(64), nullable=True),
        sa.Column("band", sa.String(64), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("duration_s", sa.BigInteger, nullable=False),
        sa.Column("billed_s", sa.BigInteger, nullable=False),
        sa.Column("free_s", sa.BigInteger, nullable=False),
        sa.Column("price", sa.BigInteger, nullable=False),
        sa.Column("connection_fee", sa.BigInteger, nullable=False),
        sa.Column("cost", sa.BigInteger, nullable=False),
        sa.Column("period_start", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("session_id", name="pk_calls"),
    )
    op.create_index("ix_calls_user_name_started_at", "calls", ["user_name", "started_at"])
    op.create_index("ix_calls_period_start", "calls", ["period_start"])
    op.create_table(
        "free_minutes",
        sa.Column("user_name", sa.String(NAME), nullable=False),
        sa.Column("period_start", sa.BigInteger, nullable=False),
        sa.Column("used_s", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("carried_in_s", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.PrimaryKeyConstraint("user_name", "period_start", name="pk_free_minutes"),
    )


def downgrade() -> None:
    op.drop_table("free_minutes")
    op.drop_index("ix_calls_period_start", table_name="calls")
    op.drop_index("ix_calls_user_name_started_at", table_name="calls")
    op.drop_table("calls")
    op.drop_table("rates")
    op.drop_table("rate_tables")
    op.drop_table("vouchers")
    op.drop_index("ix_ledger_user_name_created_at", table_name="ledger")
    op.drop_table("ledger")
    op.drop_table("balances")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("direction")
