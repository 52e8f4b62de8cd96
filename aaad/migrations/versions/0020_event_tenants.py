"""The tenant of an event: ``events.tenant_id`` (the tenant of the event's user
or session; 0: the operator's), indexed with ``id`` for a tenant's feed.

Events recorded before are the tenant's of their session where they have one
(what a tenant's feed showed before); the rest stay the operator's, as they
named users by name only.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("tenant_id", sa.Integer, nullable=False,
                                   server_default=sa.text("0")))
        batch.create_index("ix_events_tenant_id_id", ["tenant_id", "id"])
    op.execute(sa.text(
        "UPDATE events SET tenant_id = (SELECT s.tenant_id FROM sessions s "
        "WHERE s.id = events.session_id) "
        "WHERE session_id IN (SELECT id FROM sessions WHERE tenant_id <> 0)"))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.drop_index("ix_events_tenant_id_id")
        batch.drop_column("tenant_id")
