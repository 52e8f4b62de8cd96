"""Engines and connection set-up for SQLite, PostgreSQL and MariaDB.

SQLite runs in WAL mode with ``synchronous=FULL`` (a committed transaction
survives power loss) and takes the write lock at BEGIN (``BEGIN IMMEDIATE``)
so a writer never deadlocks upgrading a read lock. Reads use a second engine
that begins deferred, so they never wait for the writer.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc, make_url

from aaad.store.sql import install_deferred_writes

__all__ = ["Database", "open_database", "is_retryable", "is_data_error", "is_unavailable",
           "was_disconnected", "sqlite_no_wait_connection", "discard",
           "describe_url", "CONNECT_TIMEOUT_S"]

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 10_000
# A server that does not answer at all (a network partition) must not hold
# the writer thread for the kernel's minutes of SYN retries: the outage
# journal can only take over once the attempt has failed.
CONNECT_TIMEOUT_S = 5
# A connection whose server vanished without a FIN or RST (power loss, a
# partition) is given up after this long instead of hanging the writer.
IO_TIMEOUT_S = 60
# MariaDB error codes meaning the server or the connection to it is gone:
# can't connect (2002, 2003), gone away (2006), lost (2013, 2055), server
# shutdown (1053), connection killed (1927).
_MYSQL_UNAVAILABLE = frozenset({2002, 2003, 2006, 2013, 2055, 1053, 1927})


@dataclass(frozen=True, slots=True)
class Database:
    """A writer engine (accounting, admin changes) and a reader engine (auth)."""

    writer: Engine
    reader: Engine
    url: str

    @property
    def dialect(self) -> str:
        return self.writer.dialect.name

    def dispose(self) -> None:
        self.writer.dispose()
        if self.reader is not self.writer:
            self.reader.dispose()


def describe_url(url: str) -> str:
    """The URL with any password hidden, for logs and errors."""
    return make_url(url).render_as_string(hide_password=True)


def open_database(url: str, *, pool_size: int = 4) -> Database:
    """Create engines for ``url``; no connection is made yet.

    Raises:
        sqlalchemy.exc.ArgumentError, ModuleNotFoundError: bad URL or a
            missing driver (install the ``postgres`` or ``mysql`` extra).
    """
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        writer = _sqlite_engine(url, immediate=True)
        reader = _sqlite_engine(url, immediate=False)
        return Database(writer, reader, url)
    kwargs: dict[str, Any] = {"pool_size": pool_size, "max_overflow": pool_size,
                              "pool_recycle": 3600}
    if u.get_backend_name() == "mysql":
        kwargs["isolation_level"] = "READ COMMITTED"
        kwargs["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_S,
                                  "read_timeout": IO_TIMEOUT_S, "write_timeout": IO_TIMEOUT_S}
    elif u.get_backend_name() == "postgresql":
        kwargs["connect_args"] = {k: v for k, v in {
            "connect_timeout": CONNECT_TIMEOUT_S, "keepalives": 1, "keepalives_idle": 10,
            "keepalives_interval": 5, "keepalives_count": 3,
            "tcp_user_timeout": IO_TIMEOUT_S * 1000}.items() if k not in u.query}
    # The writer runs a transaction per group-commit batch: a ping before each
    # would be one more round trip per batch. A batch that finds its
    # connection dead fails with a disconnect error, which invalidates the
    # pool and is retried (is_retryable) on a new connection.
    writer = create_engine(url, **kwargs)
    install_deferred_writes(writer)
    # Readers run single statements that need no transaction around them:
    # in autocommit there is no BEGIN, no ROLLBACK on return to the pool and
    # no ping, so a login's lookup is one round trip (516 → 163 µs measured on
    # PostgreSQL). A dead connection fails its statement, is invalidated, and
    # the lookup is tried once more on a new one (see daemon/access_handler.py).
    reader = create_engine(url, **dict(kwargs, isolation_level="AUTOCOMMIT"),
                           pool_reset_on_return=None)
    return Database(writer, reader, url)


def _sqlite_engine(url: str, *, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Autocommit at the driver level: SQLAlchemy's "begin" hook below
        # emits BEGIN itself, with the locking mode we want.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # On the driver's connection: one statement per transaction, and
        # SQLAlchemy's execution machinery cost more than SQLite's BEGIN.
        # A busy database ("database is locked" after the busy timeout) is
        # raised as SQLAlchemy's OperationalError, as exec_driver_sql would.
        try:
            conn.connection.driver_connection.execute(begin)
        except sqlite3.Error as e:
            raise exc.DBAPIError.instance(begin, None, e, sqlite3.Error,
                                          dialect=conn.dialect) from e

    if immediate:
        install_deferred_writes(engine)
    return engine


def sqlite_no_wait_connection(engine: Engine) -> Connection:
    """A connection of SQLite ``engine`` that does not wait for a lock another
    connection holds: its BEGIN IMMEDIATE fails at once with "database is
    locked" instead of waiting up to the busy timeout. Give it back with
    :func:`discard`, never to the pool (the next user would not wait either)."""
    conn = engine.connect()
    try:
        conn.connection.driver_connection.execute("PRAGMA busy_timeout=0")  # type: ignore[union-attr]
    except BaseException:
        discard(conn)
        raise
    return conn


def discard(conn: Connection) -> None:
    """Close ``conn``'s database connection instead of returning it to the pool."""
    try:
        conn.invalidate()
    finally:
        conn.close()


def is_data_error(error: BaseException) -> bool:
    """The statement failed because of the values in it, not the database.

    A value out of range, too long, or a constraint violation: retrying the
    same rows cannot help, but the other rows of the batch are fine.
    """
    if isinstance(error, (exc.DataError, exc.IntegrityError)):
        return True
    # A bind value the driver could not convert (e.g. an int over 64 bits:
    # sqlite3 raises a bare OverflowError that SQLAlchemy does not wrap).
    if isinstance(error, OverflowError):
        return True
    # MariaDB's "BIGINT value is out of range" in arithmetic (1690), which
    # pymysql reports as an OperationalError, as if the server had failed.
    if isinstance(error, exc.DBAPIError) and getattr(error.orig, "args", (None,))[:1] == (1690,):
        return True
    return isinstance(error, exc.StatementError) and not isinstance(error, exc.DBAPIError)


def was_disconnected(error: BaseException) -> bool:
    """The statement failed because its pooled connection had died (the pool
    has dropped it): the same work on a new connection may well succeed."""
    return isinstance(error, exc.DBAPIError) and bool(error.connection_invalidated)


def is_retryable(error: BaseException) -> bool:
    """A deadlock, serialization failure, busy database or lost connection:
    try the batch again (a lost connection is replaced by a new one)."""
    if not isinstance(error, exc.DBAPIError):
        return False
    if error.connection_invalidated:          # the server restarted or dropped us
        return True
    orig = error.orig
    code = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    if code in ("40001", "40P01"):          # PostgreSQL serialization failure, deadlock
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in (1205, 1213):      # MariaDB lock wait timeout, deadlock
        return True
    return "database is locked" in str(orig)


def is_unavailable(error: BaseException) -> bool:
    """The database cannot be reached: refused, lost or shut-down connection.

    Not a data error and not a busy database: the same statement will work
    once the server is back, so the records are journaled meanwhile.
    """
    if isinstance(error, exc.DisconnectionError):
        return True
    if not isinstance(error, exc.DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    orig = error.orig
    code = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    if isinstance(code, str) and (code.startswith("08") or code in ("57P01", "57P02", "57P03")):
        return True       # PostgreSQL connection exceptions, admin/crash shutdown, starting up
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_UNAVAILABLE:
        return True
    if isinstance(error, (exc.OperationalError, exc.InterfaceError)) and code is None:
        text = str(orig).lower()
        # psycopg reports a failed connect or a dead socket without an SQLSTATE.
        return any(s in text for s in (
            "connection refused", "could not connect", "server closed the connection",
            "connection is closed", "connection to server", "consuming input failed",
            "the connection is lost", "unable to open database file", "terminating connection"))
    return False
