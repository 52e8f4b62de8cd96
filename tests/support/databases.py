"""The test databases: SQLite always, PostgreSQL and MariaDB when reachable, each a
fresh database made for this test run and migrated once with the real Alembic migrations.

PostgreSQL and MariaDB are found at AAAD_TEST_POSTGRES_URL / AAAD_TEST_MYSQL_URL
(defaults: the local servers, trust auth / root without password). When one is
unreachable its tests skip, unless AAAD_REQUIRE_DB=1 (CI), where they fail.
The fixtures over these (``db``, ``sqlite_db``, ``dialect``, ``server_urls``) are in
tests/conftest.py.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, exists, literal, make_url, select, text, union_all

from aaad.store import migrate
from aaad.store.database import Database, open_database
from aaad.store.tables import metadata

POSTGRES_ADMIN_URL = os.environ.get("AAAD_TEST_POSTGRES_URL",
                                    "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_ADMIN_URL = os.environ.get("AAAD_TEST_MYSQL_URL",
                                 "mysql+pymysql://root@127.0.0.1:3306/test")
REQUIRE_DB = os.environ.get("AAAD_REQUIRE_DB") == "1"
RUN_ID = f"{os.getpid()}_{secrets.token_hex(3)}"

DIALECTS = ["sqlite", "postgresql", "mysql"]


def _unavailable(what: str, why: BaseException) -> None:
    msg = f"{what} is not reachable ({type(why).__name__}: {str(why).splitlines()[0][:200]})"
    if REQUIRE_DB:
        pytest.fail(msg + "; AAAD_REQUIRE_DB=1 makes this a failure", pytrace=False)
    pytest.skip(msg)


def server_database(admin_url: str, dialect: str) -> Iterator[str]:
    """CREATE a fresh database on a shared server; DROP it afterwards."""
    name = f"aaad_test_{RUN_ID}"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except Exception as e:  # driver missing, server down, no permission
        _unavailable(dialect, e)
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            if dialect == "postgresql":
                conn.execute(text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :n AND pid <> pg_backend_pid()"), {"n": name})
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


_migrated: dict[str, Database] = {}


def migrated(server_urls: dict[str, object], dialect: str) -> Database:
    """The run's database of ``dialect``, migrated once with the real migrations."""
    url = server_urls["get"](dialect)  # type: ignore[operator]
    if url not in _migrated:
        database = open_database(url)
        migrate.upgrade(database.writer)
        _migrated[url] = database
    return _migrated[url]




def private_sqlite(directory: Path) -> Database:
    """A new SQLite file in ``directory``, migrated: for a module whose daemon
    must not touch the run's shared database (a short stale window closes
    every open session in it)."""
    database = open_database(f"sqlite:///{directory / 'aaad.sqlite3'}")
    migrate.upgrade(database.writer)
    return database


def dispose_migrated() -> None:
    """Close the pools of every database ``migrated`` opened (end of the run)."""
    for database in _migrated.values():
        database.dispose()
    _migrated.clear()


# Children before parents; one query names the tables that have a row.
_TABLES = list(reversed(metadata.sorted_tables))
_NOT_EMPTY = union_all(*(select(literal(t.name)).where(exists().select_from(t))
                         for t in _TABLES))


def empty_tables(database: Database) -> None:
    """DELETE FROM each table that has a row, in one transaction: most tests leave
    behind rows in a few tables, and an empty table needs no statement (nor, when
    all are, a write transaction to commit). On PostgreSQL the commit does not wait
    for the WAL flush (``synchronous_commit`` for this transaction only): a test
    database needs no durability against a server crash, and what the next
    transaction sees is the same."""
    with database.writer.begin() as conn:
        not_empty = set(conn.execute(_NOT_EMPTY).scalars())
        if not not_empty:
            return
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL synchronous_commit TO OFF"))
        for table in _TABLES:
            if table.name in not_empty:
                conn.execute(table.delete())
