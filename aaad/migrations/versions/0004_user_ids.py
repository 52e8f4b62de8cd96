"""Per-user state and history keyed by users.id instead of the name.

A re-created login name used to inherit the deleted user's balance, usage,
free minutes, blocks, ledger and open sessions, because all of them were
keyed by the name. From here on they are keyed by ``user_id``:

- ``users`` gets ``account`` (false: the no-account holder of a name that has
  usage but no account) and, on SQLite, ``AUTOINCREMENT``, so the id of a
  deleted user is never handed out again (PostgreSQL sequences and MariaDB's
  ``AUTO_INCREMENT``, persisted since 10.2.4, never go back anyway).
- ``sessions``, ``usage_counters``, ``usage_bands``, ``blocks``, ``charges``,
  ``balances``, ``ledger``, ``calls`` and ``free_minutes`` get ``user_id``;
  primary keys and indexes move from ``user_name`` to it. ``user_name`` stays
  as the name the row was written under, so history reads without a join.
- ``events`` (an audit log) and ``vouchers.redeemed_by`` (an audit record; the
  money is in the ledger) keep the name only.

Back-fill: a row goes to the user that has its name now. Names that appear in
those tables but have no user (a deleted user's history, or usage of a name
that never had an account) get one no-account ``users`` row each, with
``created_at`` 0 (unknown), and their rows go to it; a later ``user add`` of
that name then starts clean. Rows of a name that was deleted and added again
before this migration cannot be told apart and stay with the current user.

Downgrade goes back to name keys; it fails if a name has rows under two ids
in a keyed table (the old schema cannot hold them), and it removes the
no-account rows from ``users``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Tables whose key becomes the user id: table → (old key, new key).
KEYED = {
    "usage_counters": (["user_name", "period_start"], ["user_id", "period_start"]),
    "usage_bands": (["user_name", "period_start", "band"], ["user_id", "period_start", "band"]),
    "balances": (["user_name"], ["user_id"]),
    "free_minutes": (["user_name", "period_start"], ["user_id", "period_start"]),
}
# Tables with a user index: table → (second column of the index, user_id nullable).
INDEXED = {
    "sessions": ("active", True),
    "blocks": ("expires_at", False),
    "charges": ("period_start", False),
    "ledger": ("created_at", False),
    "calls": ("started_at", False),
}
ALL = [*INDEXED, *KEYED]


def _sqlite() -> bool:
    return bool(op.get_bind().dialect.name == "sqlite")


def _users(*extra: sa.ColumnClause[Any]) -> sa.TableClause:
    return sa.table("users", sa.column("id", sa.Integer), sa.column("name", sa.String),
                    *extra)


def upgrade() -> None:
    with op.batch_alter_table("users", recreate="always" if _sqlite() else "auto",
                              table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.add_column(sa.Column("account", sa.Boolean, nullable=False,
                                   server_default=sa.true()))
    _add_holders()
    for name in ALL:
        with op.batch_alter_table(name) as batch:
            batch.add_column(sa.Column("user_id", sa.Integer, nullable=True))
        table = sa.table(name, sa.column("user_id", sa.Integer),
                         sa.column("user_name", sa.String))
        users = _users()
        op.execute(table.update().values(user_id=sa.select(users.c.id).where(
            users.c.name == table.c.user_name).scalar_subquery()))
    for name, (second, nullable) in INDEXED.items():
        with op.batch_alter_table(name) as batch:
            batch.drop_index(f"ix_{name}_user_name_{second}")
            if not nullable:
                batch.alter_column("user_id", existing_type=sa.Integer, nullable=False)
            batch.create_index(f"ix_{name}_user_id_{second}", ["user_id", second])
    for name, (_old, new) in KEYED.items():
        with op.batch_alter_table(name) as batch:
            batch.drop_constraint(f"pk_{name}", type_="primary")
            batch.alter_column("user_id", existing_type=sa.Integer, nullable=False)
            batch.create_primary_key(f"pk_{name}", new)


def _add_holders() -> None:
    """One no-account user for every name that has rows but no user."""
    names = sa.union(*(sa.select(sa.table(t, sa.column("user_name", sa.String))
                                 .c.user_name) for t in ALL)).subquery("n")
    users = _users(sa.column("account", sa.Boolean), sa.column("enabled", sa.Boolean),
                   sa.column("created_at", sa.BigInteger),
                   sa.column("updated_at", sa.BigInteger))
    known = sa.table("users", sa.column("name", sa.String)).alias("u")
    op.execute(users.insert().from_select(
        ["name", "account", "enabled", "created_at", "updated_at"],
        sa.select(names.c.user_name, sa.false(), sa.false(), sa.literal(0, sa.BigInteger),
                  sa.literal(0, sa.BigInteger))
        .where(~sa.exists().where(known.c.name == names.c.user_name))))


def downgrade() -> None:
    for name, (old, _new) in KEYED.items():
        with op.batch_alter_table(name) as batch:
            batch.drop_constraint(f"pk_{name}", type_="primary")
            batch.create_primary_key(f"pk_{name}", old)
            batch.drop_column("user_id")
    for name, (second, _nullable) in INDEXED.items():
        with op.batch_alter_table(name) as batch:
            batch.drop_index(f"ix_{name}_user_id_{second}")
            batch.create_index(f"ix_{name}_user_name_{second}", ["user_name", second])
            batch.drop_column("user_id")
    users = _users(sa.column("account", sa.Boolean))
    op.execute(users.delete().where(users.c.account == sa.false()))
    with op.batch_alter_table("users", recreate="always" if _sqlite() else "auto") as batch:
        batch.drop_column("account")
