"""NT hashes: ``users.password_nt_hash``, MD4 of the UTF-16LE password (RFC 2759
§8.3 NtPasswordHash) as 32 lower-case hex digits. A third stored form of the
password beside ``password_hash`` (argon2id) and ``password_cleartext``: it
serves PAP and MS-CHAP v1/v2 without the cleartext being kept (CHAP still
needs the cleartext). NULL for every existing user.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # users keeps AUTOINCREMENT on SQLite (0004) should batch mode rebuild it.
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("password_nt_hash", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("password_nt_hash")
