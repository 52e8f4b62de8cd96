"""Which database errors mean "unreachable" (the journal takes over) and which do not,
from real drivers: a refused connection, an SQLite file that cannot be opened, bad SQL."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

from aaad.store.database import is_data_error, is_unavailable
from tests.support.databases import MYSQL_ADMIN_URL, POSTGRES_ADMIN_URL


@contextmanager
def closed_port() -> Iterator[int]:
    """A loopback TCP port held bound but not listening: a connection to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


def _error(url: str, sql: str = "SELECT 1") -> SQLAlchemyError:
    engine = create_engine(url, connect_args={"connect_timeout": 2} if "sqlite" not in url
                           else {})
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    except SQLAlchemyError as e:
        return e
    finally:
        engine.dispose()
    raise AssertionError("no error")


@pytest.mark.parametrize("admin_url", [POSTGRES_ADMIN_URL, MYSQL_ADMIN_URL])
def test_a_refused_connection_is_unavailable(admin_url: str) -> None:
    pytest.importorskip("psycopg" if "postgresql" in admin_url else "pymysql")
    with closed_port() as port:
        url = make_url(admin_url).set(port=port).render_as_string(hide_password=False)
        e = _error(url)
    assert is_unavailable(e) and not is_data_error(e)


def test_sqlite_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    assert is_unavailable(_error(f"sqlite:///{tmp_path}/no/such/dir/x.sqlite3"))


def test_a_data_error_is_not_unavailable(tmp_path: Path) -> None:
    e = _error(f"sqlite:///{tmp_path}/x.sqlite3", "SELECT * FROM no_such_table")
    assert not is_unavailable(e)
