"""Tenants (resellers): the ``tenants`` table and a tenant on what they own.

- ``tenants``: id, name (unique, lowercase: also the realm of ``user@realm``),
  description, created_at.
- ``tenant_id`` NOT NULL DEFAULT 0 on users, plans, rate_tables, vouchers
  and sessions; 0 is the operator, which has no row. Everything that exists
  migrates to the operator.
- User names are unique per tenant: ``uq_users_name`` becomes
  ``uq_users_name_tenant_id`` (name first, so a lookup by name alone keeps
  its index). A NOT NULL key is enforceable on every database, where NULLs
  in a unique key never collide.
- ``sessions.login``: the name a new session's user is looked up under in
  its tenant when that is not the User-Name as sent (a realm stripped).

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_OWNED = ("plans", "rate_tables", "vouchers", "sessions")


def _tenant_id() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("tenant_id", sa.Integer, nullable=False, server_default=sa.text("0"))


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("description", sa.String(255), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_tenants"),
        sa.UniqueConstraint("name", name="uq_tenants_name"),
        sqlite_autoincrement=True,
    )
    seq = _sqlite_sequence()
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(_tenant_id())
        batch.drop_constraint("uq_users_name", type_="unique")
        batch.create_unique_constraint("uq_users_name_tenant_id", ["name", "tenant_id"])
    _restore_sqlite_sequence(seq)
    for table in _OWNED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(_tenant_id())
            if table == "plans":
                batch.create_index("ix_plans_tenant_id", ["tenant_id"])
            if table == "sessions":
                batch.add_column(sa.Column("login", sa.String(320), nullable=True))


def downgrade() -> None:
    # Tenants' users would collide by name in one namespace: refuse rather
    # than lose which user is which.
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM tenants")).scalar():
        raise RuntimeError("cannot downgrade below 0016 while tenants exist "
                           "(aaad tenant delete them first)")
    for table in reversed(_OWNED):
        with op.batch_alter_table(table) as batch:
            if table == "sessions":
                batch.drop_column("login")
            if table == "plans":
                batch.drop_index("ix_plans_tenant_id")
            batch.drop_column("tenant_id")
    seq = _sqlite_sequence()
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_constraint("uq_users_name_tenant_id", type_="unique")
        batch.create_unique_constraint("uq_users_name", ["name"])
        batch.drop_column("tenant_id")
    _restore_sqlite_sequence(seq)
    op.drop_table("tenants")


def _sqlite_sequence() -> int | None:
    """SQLite rebuilds ``users`` to change its unique key; the new table's
    AUTOINCREMENT counter would restart at the highest id left, and give the
    ids of deleted users out again. Read it before, put it back after."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return None
    return bind.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'users'")).scalar()


def _restore_sqlite_sequence(seq: int | None) -> None:
    if seq is None:
        return
    bind = op.get_bind()
    params = {"seq": seq}
    if bind.execute(sa.text("UPDATE sqlite_sequence SET seq = max(seq, :seq) "
                            "WHERE name = 'users'"), params).rowcount == 0:
        bind.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES ('users', :seq)"),
                     params)
