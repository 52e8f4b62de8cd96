"""store.sql.select_rows: the hot reads on the driver's cursor return what
SQLAlchemy's own execution returns, for every size of their IN lists, inside
a writer's transaction (after its deferred writes) and on a reader."""

from __future__ import annotations

import pytest
from sqlalchemy import and_, bindparam, select

from aaad.store import users as user_store
from aaad.store.database import Database
from aaad.store.sql import defer_writes, select_rows, write_many
from aaad.store.tables import users

T0 = 1_795_000_000

_BY_NAMES = (select(users.c.id, users.c.name, users.c.enabled, users.c.password_cleartext)
             .where(and_(users.c.name.in_(bindparam("names", expanding=True)),
                         users.c.tenant_id.in_(bindparam("tenants", expanding=True))))
             .order_by(users.c.name))


def _add(db: Database, n: int) -> None:
    with db.writer.begin() as conn:
        for i in range(n):
            user_store.add_user(conn, f"u{i:03d}", password_hash=None,
                                password_cleartext=f"pw'{i}%s?", plan=None,
                                enabled=i % 2 == 0, now=T0)


def _plain(rows: list[object]) -> list[tuple[object, ...]]:
    # Booleans read 0/1 on SQLite's driver: compared as SQLAlchemy gives them.
    return [(r.id, r.name, bool(r.enabled), r.password_cleartext)  # type: ignore[attr-defined]
            for r in rows]


def test_the_same_rows_as_sqlalchemy_for_every_list_size(db: Database) -> None:
    _add(db, 12)
    with db.reader.connect() as conn:
        for size in (1, 2, 5, 12, 13):
            params = {"names": [f"u{i:03d}" for i in range(size)], "tenants": [0]}
            fast = select_rows(conn, _BY_NAMES, params)
            assert _plain(fast) == _plain(list(conn.execute(_BY_NAMES, params))), size
            assert len(fast) == min(size, 12)
        # Quotes, % and ? in values are parameters, never SQL.
        assert [r.password_cleartext for r in select_rows(
            conn, _BY_NAMES, {"names": ["u003"], "tenants": [0]})] == ["pw'3%s?"]
        assert select_rows(conn, _BY_NAMES, {"names": [], "tenants": [0]}) == []


def test_a_read_in_a_writers_transaction_sees_its_deferred_writes(db: Database) -> None:
    _add(db, 3)
    with db.writer.begin() as conn:
        defer_writes(conn)
        write_many(conn, users.update().where(users.c.name == bindparam("b_name"))
                   .values(password_cleartext=bindparam("b_pw")),
                   [{"b_name": "u001", "b_pw": "changed"}])
        [row] = select_rows(conn, _BY_NAMES, {"names": ["u001"], "tenants": [0]})
        assert row.password_cleartext == "changed"
    with db.reader.connect() as conn:
        [row] = select_rows(conn, _BY_NAMES, {"names": ["u001"], "tenants": [0]})
    assert row.password_cleartext == "changed"


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])    # elsewhere: SQLAlchemy's
def test_a_list_that_is_not_in_the_statement_is_refused(db: Database) -> None:
    with db.reader.connect() as conn, pytest.raises(ValueError, match="'ids'"):
        select_rows(conn, _BY_NAMES, {"names": ["u001"], "tenants": [0], "ids": [1]})
