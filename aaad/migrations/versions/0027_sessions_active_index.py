"""The open-sessions index without ``last_seen``: ``ix_sessions_active``
(``active``) replaces ``ix_sessions_active_last_seen`` (``active``,
``last_seen``).

The stale sweep's condition compares ``last_seen`` with each row's own
interim interval, so it used the index for ``active`` alone; but every
Interim-Update changes ``last_seen``, so every one rewrote an entry of that
index (SQLite: one page more per commit, 4 → 3 with the usage row;
PostgreSQL: no heap-only update of the row).

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-04
"""

from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_sessions_active", "sessions", ["active"])
    op.drop_index("ix_sessions_active_last_seen", table_name="sessions")


def downgrade() -> None:
    op.create_index("ix_sessions_active_last_seen", "sessions", ["active", "last_seen"])
    op.drop_index("ix_sessions_active", table_name="sessions")
