"""The one place where SQL dialects differ: inserts that ignore or merge, capped counter upserts.

Functions take a ``Connection`` and never open or commit a transaction: the
caller owns ``with engine.begin()``. Counter updates are atomic increments
(``col = col + :n``), so several nodes on one database count exactly.

Deferred writes (PostgreSQL, SQLite): a transaction that called
:func:`defer_writes` queues the statements given to :func:`write` and
:func:`write_many` instead of sending each on its own, and sends them with
the next statement that is not deferred, or with the COMMIT. On PostgreSQL
they go in one pipeline (libpq pipeline mode) with the COMMIT: the
accounting batch's session update, usage upsert and commit are one round
trip. On SQLite they run on the driver's cursor just before the commit,
without SQLAlchemy's per-statement work. Nothing changes
in what is written or when it is visible (all of it before the commit
returns); an error in a queued statement fails the commit (or the statement
it was sent with) as the statement itself would have.
"""

from __future__ import annotations

import collections
import functools
import json
import re
import weakref
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Insert,
    event,
    exc,
    func,
    literal_column,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite

__all__ = ["insert_ignore", "insert_once", "MAX_COUNTER", "capped", "upsert_add", "json_param",
           "greatest", "defer_writes", "write", "write_many", "flush_writes",
           "install_deferred_writes", "on_driver", "query", "select_rows", "native_sql"]


T = TypeVar("T")

_INSTALLED: weakref.WeakSet[Engine] = weakref.WeakSet()
_PG_IDLE = 0                # libpq's PQTRANS_IDLE
# A queued write: driver SQL and its parameters (a list of rows: executemany).
_Queued = tuple[str, "dict[str, Any] | list[tuple[Any, ...]]"]
# The writes queued by each Connection whose transaction defers them. Kept
# here, not in ``conn.info`` (the pooled DBAPI connection's, which outlives
# the transaction and cannot be read once the connection was invalidated).
_QUEUED: weakref.WeakKeyDictionary[Connection, list[_Queued]] = weakref.WeakKeyDictionary()
# (dialect, statement, parameter names) → driver SQL and its positional names.
# The key holds the statement itself (hashed by identity), so an id is never
# reused for another one.
_DRIVER_SQL: dict[tuple[str, Any, tuple[str, ...]], tuple[str, tuple[str, ...]]] = {}


def install_deferred_writes(engine: Engine) -> None:
    """Let transactions of ``engine`` (PostgreSQL, SQLite) defer writes: queued
    statements go out before any other statement, or with the commit."""
    if engine.dialect.name not in ("postgresql", "sqlite") or engine in _INSTALLED:
        return
    _INSTALLED.add(engine)

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Connection, *_: Any) -> None:
        if _QUEUED.get(conn):
            flush_writes(conn)

    @event.listens_for(engine, "commit")
    def _commit(conn: Connection) -> None:
        if conn in _QUEUED:
            flush_writes(conn, commit=True)

    @event.listens_for(engine, "rollback")
    def _rollback(conn: Connection) -> None:
        _QUEUED.pop(conn, None)


def defer_writes(conn: Connection) -> None:
    """Queue this transaction's :func:`write` and :func:`write_many` statements
    (engines with :func:`install_deferred_writes`; elsewhere they run at once)."""
    if conn.engine in _INSTALLED:
        _QUEUED[conn] = []


def write(conn: Connection, statement: str, params: dict[str, Any]) -> None:
    """Run a write (driver SQL, ``%(name)s`` parameters) that returns nothing:
    queued if the transaction defers writes, at once otherwise."""
    queued = _QUEUED.get(conn)
    if queued is None:
        conn.exec_driver_sql(statement, params)
    else:
        queued.append((statement, params))


def write_many(conn: Connection, statement: Any, rows: Sequence[dict[str, Any]]) -> None:
    """``conn.execute(statement, rows)`` for a write that returns nothing, every
    row with the same keys; queued (as driver SQL, compiled once) if the
    transaction defers writes. The values must need no conversion by
    SQLAlchemy's types (ints, str, bool, None)."""
    queued = _QUEUED.get(conn)
    if queued is None or not rows or conn.dialect.paramstyle != "qmark":
        conn.execute(statement, list(rows))
        return
    keys = tuple(rows[0])
    cache_key = (conn.dialect.name, statement, keys)
    found = _DRIVER_SQL.get(cache_key)
    if found is None:
        compiled = statement.compile(dialect=conn.dialect, column_keys=list(keys))
        found = _DRIVER_SQL[cache_key] = (compiled.string, tuple(compiled.positiontup or ()))
    sql, names = found
    queued.append((sql, [tuple(row[n] for n in names) for row in rows]))


def flush_writes(conn: Connection, *, commit: bool = False) -> None:
    """Send the queued writes; on PostgreSQL in one pipeline, with ``commit``
    the COMMIT too (SQLAlchemy's own commit then finds the transaction
    closed: psycopg sends nothing). On SQLite they run on the driver's cursor, with
    none of SQLAlchemy's per-statement work, and SQLAlchemy commits.

    A driver error is raised as SQLAlchemy's wrapper of it (exc.DataError,
    exc.OperationalError, ...), and a lost connection is invalidated, as for
    a statement run through SQLAlchemy.
    """
    if conn not in _QUEUED and not commit:
        return                  # this transaction does not defer writes
    queued = _QUEUED.pop(conn, None) or []
    if not commit:
        _QUEUED[conn] = []
    postgres = conn.dialect.name == "postgresql"
    if not queued and not (commit and postgres):
        return
    raw: Any = conn.connection.driver_connection
    if not queued and raw.pgconn.transaction_status == _PG_IDLE:
        return                  # committed already (query(commit=True)), or never begun
    statement = "COMMIT"
    params: Any = None
    try:
        if postgres:
            # The COMMIT as a statement of the pipeline, so that the one Sync
            # at its end is the only wait (raw.commit() would sync, and the
            # pipeline's end sync again: two round trips).
            with raw.pipeline(), raw.cursor() as cur:
                for statement, params in queued:
                    cur.execute(statement, params)
                if commit:
                    statement, params = "COMMIT", None
                    cur.execute("COMMIT")
        else:
            cur = raw.cursor()
            try:
                for statement, params in queued:
                    if isinstance(params, list):
                        cur.executemany(statement, params)
                    else:
                        cur.execute(statement, params)
            finally:
                cur.close()
    except conn.dialect.loaded_dbapi.Error as e:
        raise _wrapped(conn, raw, e, statement, params) from e


def on_driver(conn: Connection, work: Callable[[Any], T]) -> T:
    """SQLite: ``work(driver connection)``, after the transaction's queued
    writes, in the transaction; its result. A driver error is raised as
    SQLAlchemy's wrapper of it, as :func:`flush_writes` does."""
    flush_writes(conn)
    raw: Any = conn.connection.driver_connection
    try:
        return work(raw)
    except conn.dialect.loaded_dbapi.Error as e:
        raise _wrapped(conn, raw, e, "", None) from e


def query(conn: Connection, statement: str, params: dict[str, Any], *,
          commit: bool = False) -> list[Any]:
    """The rows (attribute access by column name) of a PostgreSQL statement in
    driver SQL (``%(name)s`` parameters), run on the driver's connection in
    one pipeline with what must precede it: the transaction's BEGIN, which
    psycopg would otherwise send as a round trip of its own, and any queued
    writes. With ``commit``, the statement is committed before the rows are
    returned, and SQLAlchemy's own commit then has nothing to send (a
    statement after this one begins a new transaction): a statement that is
    the whole transaction runs alone in autocommit mode (no BEGIN, no
    COMMIT: the server commits it before it answers), otherwise the COMMIT
    follows in the same pipeline. Errors are raised as :func:`flush_writes`
    raises them."""
    if conn.dialect.name != "postgresql":
        raise ValueError(f"query() is for PostgreSQL, not {conn.dialect.name}")
    queued = _QUEUED.get(conn)
    if queued:
        _QUEUED[conn] = []
    raw: Any = conn.connection.driver_connection
    sql: str = statement
    args: Any = params
    try:
        if (commit and not queued and not raw.autocommit
                and raw.pgconn.transaction_status == _PG_IDLE):
            raw.set_autocommit(True)
            try:
                with _cursor(conn, raw, statement) as cur:
                    sql, args = _native(statement, params)
                    cur.execute(sql, args)
                    return _rows(cur, statement)
            finally:
                raw.set_autocommit(False)
        with raw.pipeline():
            with raw.cursor() as cur:
                if not raw.autocommit and raw.pgconn.transaction_status == _PG_IDLE:
                    # psycopg would send its own BEGIN and wait for it (a
                    # Sync): sent here, it is one more statement of the
                    # pipeline. Once it is queued the connection is no longer
                    # idle, so psycopg sends none.
                    raw._autocommit = True
                    try:
                        cur.execute("BEGIN")
                    finally:
                        raw._autocommit = False
                for sql, args in queued or ():
                    cur.execute(sql, args)
            cur = raw.cursor()
            sql, args = statement, params
            cur.execute(statement, params)
            if commit:
                with raw.cursor() as end:
                    sql, args = "COMMIT", None
                    end.execute("COMMIT")
        try:
            return _rows(cur, statement)
        finally:
            cur.close()
    except conn.dialect.loaded_dbapi.Error as e:
        raise _wrapped(conn, raw, e, sql, args) from e


# psycopg parses a statement's %(name)s placeholders at every execution
# unless the statement is short enough for its cache.
_PARSE_CACHED = 4096
_NATIVE: dict[str, tuple[str, tuple[str, ...]]] = {}


def _cursor(conn: Connection, raw: Any, statement: str) -> Any:
    if len(statement) <= _PARSE_CACHED:
        return raw.cursor()
    return conn.dialect.loaded_dbapi.RawCursor(raw)     # the driver module: psycopg


def _native(statement: str, params: dict[str, Any]) -> tuple[str, Any]:
    """A long statement with PostgreSQL's own $n placeholders (converted once),
    for a RawCursor, which sends it without parsing it; a short one as it is."""
    if len(statement) <= _PARSE_CACHED:
        return statement, params
    found = _NATIVE.get(statement)
    if found is None:
        found = _NATIVE[statement] = native_sql(statement)
    sql, order = found
    return sql, [params[n] for n in order]


def native_sql(statement: str) -> tuple[str, tuple[str, ...]]:
    """A statement in driver SQL (``%(name)s``) with PostgreSQL's own ``$n``
    placeholders instead, and the names in the order of their numbers."""
    names: list[str] = []

    def number(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"
    return re.sub(r"%\((\w+)\)s", number, statement), tuple(names)


def qmark_sql(statement: str) -> tuple[str, tuple[str, ...]]:
    """A statement with ``:name`` parameters as SQLite's ``?`` ones, and the
    name of each ``?`` in order (a name used twice is two of them)."""
    names = tuple(re.findall(r":(\w+)", statement))
    return re.sub(r":\w+", "?", statement), names


def _rows(cur: Any, statement: str) -> list[Any]:
    """The rows of an executed cursor as named tuples; the type is found once per
    statement (psycopg's ``description`` builds a Column per column, at every call)."""
    rows = cur.fetchall()
    row_type = _ROW_TYPES.get(statement)
    if row_type is None:
        row_type = _ROW_TYPES[statement] = _row_type(
            tuple(d[0] for d in cur.description or ()))
    return [row_type(*r) for r in rows]


# Driver SQL → the named tuple type of its rows (a statement's text fixes its columns).
_ROW_TYPES: dict[str, Any] = {}


# (dialect, statement, expanding list sizes) → driver SQL and how to lay out
# its parameters (positional names in order, or None for named ones).
_SELECT_SQL: dict[tuple[str, Any, tuple[tuple[str, int], ...]],
                  tuple[str, tuple[str, ...] | None]] = {}


def select_rows(conn: Connection, statement: Any, params: dict[str, Any]) -> list[Any]:
    """``conn.execute(statement, params)`` for a hot read on SQLite or PostgreSQL,
    run on the driver's cursor: the SQL is compiled once per dialect and per
    size of each expanding list (a ``list`` value), and none of SQLAlchemy's
    per-statement work (cache key, parameter processing, events, result
    wrapping) is done. The rows are named tuples, read by column label.

    Only for statements whose values need no conversion by SQLAlchemy's types
    either way (ints, str, None; a Boolean column reads 0/1 on SQLite, so
    read it through ``bool()``). Elsewhere (MariaDB), or with an empty list,
    it is ``conn.execute``. Queued writes go first; errors are raised as
    :func:`flush_writes` raises them.
    """
    dialect = conn.dialect
    if dialect.name not in ("sqlite", "postgresql") or any(
            isinstance(v, list) and not v for v in params.values()):
        return list(conn.execute(statement, params))
    shape = tuple(sorted((k, len(v)) for k, v in params.items() if isinstance(v, list)))
    key = (dialect.name, statement, shape)
    found = _SELECT_SQL.get(key)
    if found is None:
        found = _SELECT_SQL[key] = _driver_select(statement, dialect, shape)
    sql, order = found
    args: Any
    if order is None:           # named: each list item is a parameter of its own
        args = {}
        for k, v in params.items():
            if isinstance(v, list):
                args.update((f"{k}_{i}", x) for i, x in enumerate(v))
            else:
                args[k] = v
    else:
        args = []
        for k in order:
            v = params[k]
            if isinstance(v, list):
                args.extend(v)
            else:
                args.append(v)
    if dialect.name == "postgresql":
        return query(conn, sql, args)
    if _QUEUED.get(conn):
        flush_writes(conn)
    raw: Any = conn.connection.driver_connection
    try:
        cur = raw.cursor()
        try:
            cur.execute(sql, args)
            return _rows(cur, sql)
        finally:
            cur.close()
    except conn.dialect.loaded_dbapi.Error as e:
        raise _wrapped(conn, raw, e, sql, args) from e


def _driver_select(statement: Any, dialect: Any,
                   shape: tuple[tuple[str, int], ...]) -> tuple[str, tuple[str, ...] | None]:
    compiled = statement.compile(dialect=dialect)
    sql: str = compiled.string
    positional = dialect.paramstyle in ("qmark", "format")
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    for name, n in shape:
        marker = f"__[POSTCOMPILE_{name}]"
        if marker not in sql:
            raise ValueError(f"{name!r} is not an expanding parameter of the statement")
        sql = sql.replace(marker, ", ".join(
            [mark] * n if positional else [f"%({name}_{i})s" for i in range(n)]))
    return sql, tuple(compiled.positiontup or ()) if positional else None


@functools.lru_cache(maxsize=64)
def _row_type(names: tuple[str, ...]) -> Any:
    """A named tuple type for rows with these column names."""
    return collections.namedtuple("Row", names)


def _wrapped(conn: Connection, raw: Any, e: Any, statement: str,
             params: Any) -> exc.StatementError:
    """A driver error as SQLAlchemy raises it, the connection invalidated if lost."""
    invalidated = conn.dialect.is_disconnect(e, raw, None)
    if invalidated:
        conn.invalidate(e)
    wrapped: exc.StatementError = exc.DBAPIError.instance(
        statement, params, e, conn.dialect.loaded_dbapi.Error,
        connection_invalidated=invalidated, dialect=conn.dialect)
    return wrapped


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
    return _JSON.encode(value)


# One encoder: json.dumps with separators builds one per call, which cost
# 2 µs of the 8 a one-row parameter took.
_JSON = json.JSONEncoder(separators=(",", ":"))
