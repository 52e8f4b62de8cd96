"""Shared fixtures: real databases (SQLite always, PostgreSQL and MariaDB when
reachable), each a fresh database made for this test run and migrated with the
real Alembic migrations.

PostgreSQL and MariaDB are found at AAAD_TEST_POSTGRES_URL / AAAD_TEST_MYSQL_URL
(defaults: the local servers, trust auth / root without password). When one is
unreachable its tests skip, unless AAAD_REQUIRE_DB=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from sqlalchemy import create_engine, make_url, text

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

# Property tests: no per-example deadline (the machine may be busy), and a
# HYPOTHESIS_PROFILE=long run for many more examples. Tests that ask for a
# number of examples (tests/test_properties_*.py) take max(theirs, the profile's).
settings.register_profile("aaad", deadline=None)
settings.register_profile("long", deadline=None, max_examples=20_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "aaad"))


def _unavailable(what: str, why: BaseException) -> None:
    msg = f"{what} is not reachable ({type(why).__name__}: {str(why).splitlines()[0][:200]})"
    if REQUIRE_DB:
        pytest.fail(msg + "; AAAD_REQUIRE_DB=1 makes this a failure", pytrace=False)
    pytest.skip(msg)


def _server_database(admin_url: str, dialect: str) -> Iterator[str]:
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


@pytest.fixture(scope="session")
def server_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """Lazily created database URLs, one per dialect, for the whole run."""
    made: dict[str, str] = {}
    closers: list[Iterator[str]] = []

    def get(dialect: str) -> str:
        if dialect not in made:
            if dialect == "sqlite":
                path = tmp_path_factory.mktemp("sqlite") / "aaad.sqlite3"
                made[dialect] = f"sqlite:///{path}"
            else:
                gen = _server_database(POSTGRES_ADMIN_URL if dialect == "postgresql"
                                       else MYSQL_ADMIN_URL, dialect)
                made[dialect] = next(gen)
                closers.append(gen)
        return made[dialect]

    yield {"get": get}
    for database in _migrated.values():
        database.dispose()
    _migrated.clear()
    for gen in closers:
        for _ in gen:
            pass


_migrated: dict[str, Database] = {}


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def migrated(server_urls: dict[str, object], dialect: str) -> Database:
    """The run's database of ``dialect``, migrated once with the real migrations."""
    url = server_urls["get"](dialect)  # type: ignore[operator]
    if url not in _migrated:
        database = open_database(url)
        migrate.upgrade(database.writer)
        _migrated[url] = database
    return _migrated[url]


@pytest.fixture
def db(dialect: str, server_urls: dict[str, object]) -> Iterator[Database]:
    """A migrated database of ``dialect`` with every table emptied."""
    database = migrated(server_urls, dialect)
    with database.writer.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    yield database


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    """A fresh, migrated SQLite file of this test's own."""
    database = open_database(f"sqlite:///{tmp_path / 'aaad.sqlite3'}")
    migrate.upgrade(database.writer)
    yield database
    database.dispose()
