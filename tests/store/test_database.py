"""The reader engine on the server databases: autocommit, and a dead pooled
connection is reported as such (the auth lookup then tries once more)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from aaad.store.database import open_database, was_disconnected

KILL = {"postgresql": "SELECT pg_terminate_backend(:pid)", "mysql": "KILL :pid"}
PID = {"postgresql": "SELECT pg_backend_pid()", "mysql": "SELECT CONNECTION_ID()"}


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_a_killed_reader_connection_is_replaced_on_the_next_try(
        server_urls: dict[str, object], dialect: str) -> None:
    url = server_urls["get"](dialect)  # type: ignore[operator]
    db = open_database(url, pool_size=1)
    try:
        with db.reader.connect() as conn:
            pid = conn.execute(text(PID[dialect])).scalar()
            raw = conn.connection.dbapi_connection
            assert (raw.autocommit if dialect == "postgresql" else raw.get_autocommit()) is True
        with db.writer.begin() as admin:
            admin.execute(text(KILL[dialect]), {"pid": pid})
        with pytest.raises(Exception) as caught, db.reader.connect() as conn:
            conn.execute(text("SELECT 1")).scalar()
        assert was_disconnected(caught.value)
        with db.reader.connect() as conn:           # the pool made a new connection
            assert conn.execute(text("SELECT 1")).scalar() == 1
            assert conn.execute(text(PID[dialect])).scalar() != pid
    finally:
        db.dispose()
