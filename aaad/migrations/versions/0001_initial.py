"""Users, sessions and per-period usage counters.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("password_cleartext", sa.String(255), nullable=True),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("plan", sa.String(64), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_users"),
        sa.UniqueConstraint("name", name="uq_users_name"),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("user_name", sa.String(320), nullable=False),
        sa.Column("nas_key", sa.String(320), nullable=False),
        sa.Column("client", sa.String(64), nullable=False),
        sa.Column("nas_address", sa.String(45), nullable=False),
        sa.Column("acct_session_id", sa.String(320), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("packets", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("last_seen", sa.BigInteger, nullable=False),
        sa.Column("stopped_at", sa.BigInteger, nullable=True),
        sa.Column("terminate_cause", sa.String(32), nullable=True),
        sa.Column("session_s", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("in_octets", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("out_octets", sa.BigInteger, nullable=False, server_default=sa.text("0")),
        sa.Column("framed_ip", sa.String(45), nullable=True),
        sa.Column("calling_station_id", sa.String(128), nullable=True),
        sa.Column("called_station_id", sa.String(128), nullable=True),
        sa.Column("nas_port", sa.BigInteger, nullable=True),
        sa.Column("nas_port_id", sa.String(128), nullable=True),
        sa.Column("interim_interval_s", sa.Integer, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_sessions"),
    )
    op.create_index("ix_sessions_user_name_active", "sessions", ["user_name", "active"])
    op.create_index("ix_sessions_nas_key_active", "sessions", ["nas_key", "active"])
    op.create_index("ix_sessions_active_last_seen", "sessions", ["active", "last_seen"])
    op.create_table(
        "usage_counters",
        sa.Column("user_name", sa.String(320), nullable=False),
        sa.Column("period_start", sa.BigInteger, nullable=False),
        sa.Column("session_s", sa.BigInteger, nullable=False),
        sa.Column("in_octets", sa.BigInteger, nullable=False),
        sa.Column("out_octets", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("user_name", "period_start", name="pk_usage_counters"),
    )


def downgrade() -> None:
    op.drop_table("usage_counters")
    op.drop_index("ix_sessions_active_last_seen", table_name="sessions")
    op.drop_index("ix_sessions_nas_key_active", table_name="sessions")
    op.drop_index("ix_sessions_user_name_active", table_name="sessions")
    op.drop_table("sessions")
    op.drop_table("users")
