"""Reply attributes and fair-use throttling: ``users.reply_attributes`` (the
user's own Access-Accept attributes, canonical JSON ``[[name, value], ...]``;
NULL: none) and ``sessions.throttled`` (a CoA-Request with the plan's
throttle attributes was sent for this open session, or the session began
throttled: it is sent once, not at every Interim-Update).

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # users keeps AUTOINCREMENT on SQLite (0004) should batch mode rebuild it.
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("reply_attributes", sa.Text, nullable=True))
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("throttled", sa.Boolean, nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("throttled")
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("reply_attributes")
