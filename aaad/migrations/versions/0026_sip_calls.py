"""SIP calls: ``calls.disposition`` ("missed" for a call that never connected,
from an Acct-Status-Type = Failed record such as a SIP proxy's busy or
unanswered INVITE; NULL: an answered call), and ``sessions.authorised_s``
(the call time the Access-Accept of the session's Call-ID allowed; NULL:
unknown).

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(sa.Column("disposition", sa.String(16), nullable=True))
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("authorised_s", sa.BigInteger, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("authorised_s")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("disposition")
