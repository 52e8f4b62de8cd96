"""Shared fixtures and the tier markers.

Every test is marked with its tier by the folder it is in: tests/unit (``unit``:
pure code, no socket, no database, no process), tests/store (``store``: real
databases, in process) and tests/e2e (``e2e``: the daemon, the CLI or the wheel
as processes, real sockets). ``pytest -m unit`` or ``make test-fast`` runs the first.

The databases (SQLite always, PostgreSQL and MariaDB when reachable) are made once
per run and migrated with the real Alembic migrations: tests/support/databases.py.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from aaad.store import migrate
from aaad.store.database import Database, open_database
from tests.support.databases import (
    DIALECTS,
    MYSQL_ADMIN_URL,
    POSTGRES_ADMIN_URL,
    dispose_migrated,
    empty_tables,
    migrated,
    server_database,
)

TIERS = ("unit", "store", "e2e")

# Property tests: no per-example deadline (the machine may be busy), and a
# HYPOTHESIS_PROFILE=long run for many more examples. Tests that ask for a
# number of examples (tests/unit/test_properties_*.py) take max(theirs, the profile's).
settings.register_profile("aaad", deadline=None)
settings.register_profile("long", deadline=None, max_examples=20_000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "aaad"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with the tier of its folder (tests/<tier>/…)."""
    root = Path(__file__).parent
    for item in items:
        parts = item.path.relative_to(root).parts if item.path.is_relative_to(root) else ()
        if parts and parts[0] in TIERS:
            item.add_marker(parts[0])


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
                gen = server_database(POSTGRES_ADMIN_URL if dialect == "postgresql"
                                      else MYSQL_ADMIN_URL, dialect)
                made[dialect] = next(gen)
                closers.append(gen)
        return made[dialect]

    yield {"get": get}
    dispose_migrated()
    for gen in closers:
        for _ in gen:
            pass


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db(dialect: str, server_urls: dict[str, object]) -> Iterator[Database]:
    """A migrated database of ``dialect`` with every table emptied."""
    database = migrated(server_urls, dialect)
    empty_tables(database)
    yield database


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    """A fresh, migrated SQLite file of this test's own."""
    database = open_database(f"sqlite:///{tmp_path / 'aaad.sqlite3'}")
    migrate.upgrade(database.writer)
    yield database
    database.dispose()
