"""Engines and connection set-up for SQLite, PostgreSQL and MariaDB.

SQLite runs in WAL mode with ``synchronous=FULL`` (a committed transaction
survives power loss) and takes the write lock at BEGIN (``BEGIN IMMEDIATE``)
so a writer never deadlocks upgrading a read lock. Reads use a second engine
that begins deferred, so they never wait for the writer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc, make_url

__all__ = ["Database", "open_database", "is_retryable", "is_data_error", "describe_url"]

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 10_000


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
                              "pool_pre_ping": True, "pool_recycle": 3600}
    if u.get_backend_name() == "mysql":
        kwargs["isolation_level"] = "READ COMMITTED"
    engine = create_engine(url, **kwargs)
    return Database(engine, engine, url)


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

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


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


def is_retryable(error: BaseException) -> bool:
    """A deadlock, serialization failure or busy database: try the batch again."""
    if not isinstance(error, exc.DBAPIError):
        return False
    orig = error.orig
    code = getattr(orig, "sqlstate", None) or getattr(getattr(orig, "diag", None), "sqlstate", None)
    if code in ("40001", "40P01"):          # PostgreSQL serialization failure, deadlock
        return True
    args = getattr(orig, "args", ())
    if args and args[0] in (1205, 1213):      # MariaDB lock wait timeout, deadlock
        return True
    return "database is locked" in str(orig)
