"""Plans, hour blocks, the charges ledger, events, per-band and counted usage.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage_counters") as batch:
        for name in ("counted_s", "counted_in_octets", "counted_out_octets"):
            batch.add_column(sa.Column(name, sa.BigInteger, nullable=False,
                                       server_default=sa.text("0")))
    # Usage recorded before plans existed counted in full.
    op.execute("UPDATE usage_counters SET counted_s = session_s, "
               "counted_in_octets = in_octets, counted_out_octets = out_octets")
    op.create_table(
        "usage_bands",
        sa.Column("user_name", sa.String(320), nullable=False),
        sa.Column("period_start", sa.BigInteger, nullable=False),
        sa.Column("band", sa.String(64), nullable=False),
        sa.Column("session_s", sa.BigInteger, nullable=False),
        sa.Column("in_octets", sa.BigInteger, nullable=False),
        sa.Column("out_octets", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("user_name", "period_start", "band", name="pk_usage_bands"),
    )
    op.create_table(
        "plans",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_plans"),
        sa.UniqueConstraint("name", name="uq_plans_name"),
    )
    op.create_table(
        "blocks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_name", sa.String(320), nullable=False),
        sa.Column("seconds_total", sa.BigInteger, nullable=False),
        sa.Column("seconds_used", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("purchased_at", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
        sa.Column("ref", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_blocks"),
        sa.UniqueConstraint("ref", name="uq_blocks_ref"),
    )
    op.create_index("ix_blocks_user_name_expires_at", "blocks", ["user_name", "expires_at"])
    op.create_table(
        "charges",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_name", sa.String(320), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("ref", sa.String(128), nullable=False),
        sa.Column("period_start", sa.BigInteger, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("description", sa.String(255), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_charges"),
        sa.UniqueConstraint("ref", name="uq_charges_ref"),
    )
    op.create_index("ix_charges_user_name_period_start", "charges", ["user_name", "period_start"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("user_name", sa.String(320), nullable=True),
        sa.Column("session_id", sa.String(32), nullable=True),
        sa.Column("result", sa.String(32), nullable=False),
        sa.Column("detail", sa.String(255), nullable=False, server_default=sa.text("''")),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_at", "events", ["at"])


def downgrade() -> None:
    op.drop_index("ix_events_at", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_charges_user_name_period_start", table_name="charges")
    op.drop_table("charges")
    op.drop_index("ix_blocks_user_name_expires_at", table_name="blocks")
    op.drop_table("blocks")
    op.drop_table("plans")
    op.drop_table("usage_bands")
    with op.batch_alter_table("usage_counters") as batch:
        for name in ("counted_out_octets", "counted_in_octets", "counted_s"):
            batch.drop_column(name)
