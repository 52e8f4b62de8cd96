"""The one place where SQL dialects differ: inserts that ignore or merge, capped counter upserts.

Functions take a ``Connection`` and never open or commit a transaction: the
caller owns ``with engine.begin()``. Counter updates are atomic increments
(``col = col + :n``), so several nodes on one database count exactly.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Insert,
    func,
    literal_column,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite

__all__ = ["insert_ignore", "insert_once", "MAX_COUNTER", "capped", "upsert_add", "json_param",
           "greatest"]


def _insert(conn: Connection, table: Any) -> Any:
    name = conn.dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name in ("mysql", "mariadb"):
        return mysql.insert(table)
    return sqlite.insert(table)


def insert_ignore(conn: Connection, table: Any) -> Insert:
    stmt = _insert(conn, table)
    if conn.dialect.name in ("mysql", "mariadb"):
        return stmt.prefix_with("IGNORE")  # type: ignore[no-any-return]
    return stmt.on_conflict_do_nothing()  # type: ignore[no-any-return]


def insert_once(conn: Connection, table: Any, row: dict[str, Any]) -> bool:
    """Insert ``row`` unless it collides with a unique key; True if it went in.

    On PostgreSQL the driver reports rowcount -1 for an INSERT that SQLAlchemy
    gives an implicit ``RETURNING`` (tables with an autoincrement key), so ask
    for the key explicitly there: a skipped row returns nothing.
    """
    stmt = insert_ignore(conn, table)
    if conn.dialect.name == "postgresql":
        return conn.execute(stmt.returning(*table.primary_key.columns), row).first() is not None
    return bool(conn.execute(stmt, row).rowcount)


MAX_COUNTER = 2**63 - 1     # the counter columns are signed 64-bit BIGINT


def capped(n: int) -> int:
    """A counter value as it is stored: at most :data:`MAX_COUNTER`."""
    return n if n <= MAX_COUNTER else MAX_COUNTER


def upsert_add(conn: Connection, table: Any, keys: Sequence[str], counters: Sequence[str]) -> Any:
    """INSERT …, or add the new values to the existing row's counters.

    The sum stops at :data:`MAX_COUNTER` instead of overflowing (written
    ``least(col, MAX - new) + new``, which never overflows itself): PostgreSQL
    and MariaDB would refuse the row, and with it the record at every
    retransmit; SQLite would silently turn the column into a float. Only
    impossible usage, 9.2 EB in one period, gets there. Inserted values must
    be :func:`capped` by the caller.
    """
    cache_key = (conn.dialect.name, table.name, tuple(keys), tuple(counters))
    stmt = _UPSERTS.get(cache_key)
    if stmt is None:
        # Built once per dialect: building it (the ``excluded`` namespace)
        # cost more than running it on SQLite.
        stmt = _upsert_add(conn, table, keys, counters)
        _UPSERTS[cache_key] = stmt
    return stmt


_UPSERTS: dict[tuple[str, str, tuple[str, ...], tuple[str, ...]], Any] = {}


def _upsert_add(conn: Connection, table: Any, keys: Sequence[str], counters: Sequence[str]) -> Any:
    stmt = _insert(conn, table)
    least = func.min if conn.dialect.name == "sqlite" else func.least
    # A literal, not a parameter: pymysql's executemany cannot bind one in
    # the ON DUPLICATE KEY UPDATE part.
    top = literal_column(str(MAX_COUNTER), BigInteger())
    if conn.dialect.name in ("mysql", "mariadb"):
        return stmt.on_duplicate_key_update(
            {c: least(table.c[c], top - stmt.inserted[c]) + stmt.inserted[c]
             for c in counters})
    return stmt.on_conflict_do_update(
        index_elements=list(keys),
        set_={c: least(table.c[c], top - stmt.excluded[c]) + stmt.excluded[c]
              for c in counters})


def greatest(conn: Connection, *values: Any) -> Any:
    """SQL ``greatest(…)``: SQLite's spelling is the scalar ``max(…)``."""
    return (func.max if conn.dialect.name == "sqlite" else func.greatest)(*values)


def json_param(value: Any) -> str:
    """Rows for json_to_recordset: one parameter, whatever the batch size, so
    the statement text never changes (and the driver prepares it), and
    encoding is one C call rather than an array dump per column."""
    return json.dumps(value, separators=(",", ":"))
