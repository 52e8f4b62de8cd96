"""Deferred writes (aaad.store.sql.defer_writes): an accounting batch on
PostgreSQL is two round trips (on SQLite it skips SQLAlchemy), and
stores what it did with them."""

from __future__ import annotations

import tempfile
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event, exc, select

from aaad.core.accounting.periods import parse_period_spec
from aaad.core.accounting.sessions import Status, Totals
from aaad.store import sessions as session_store
from aaad.store import usage as usage_store
from aaad.store.database import Database, is_data_error
from aaad.store.jobs.accounting_batch import record_accounting
from aaad.store.sql import defer_writes
from aaad.store.tables import sessions
from tests.support.records import acct_record

T0 = 1_795_000_000
MONTH = 1793491200          # 2026-11-01 UTC
UTC = ZoneInfo("UTC")


def _statements(db: Database) -> list[str]:
    seen: list[str] = []

    @event.listens_for(db.writer, "before_cursor_execute")
    def _count(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement.split()[0])
    return seen


def _batch(db: Database, octets: int, sid: str = "s1") -> None:
    with db.writer.begin() as conn:
        defer_writes(conn)
        record_accounting(conn, [acct_record(Status.INTERIM, T0, Totals(60, octets, 1),
                                             user_name="ann", acct_session_id=sid)],
                          period=parse_period_spec("monthly"), tz=UTC)


def _round_trips(db: Database, work: Any) -> list[str]:
    """The server's answers to ``work()``, one string per round trip (up to a
    ReadyForQuery: the end of what the client sent before waiting), with the
    command tag of each statement answered, from a libpq trace."""
    from sqlalchemy import event

    with tempfile.TemporaryFile() as out:
        # Whichever pooled connection work() checks out is the one traced.
        def traced(dbapi_conn: Any, _record: Any, _proxy: Any) -> None:
            dbapi_conn.pgconn.trace(out.fileno())

        def untraced(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.pgconn.untrace()
        event.listen(db.writer, "checkout", traced)
        event.listen(db.writer, "checkin", untraced)
        try:
            work()
        finally:
            event.remove(db.writer, "checkout", traced)
            event.remove(db.writer, "checkin", untraced)
        out.seek(0)
        trace = out.read().decode("utf-8", "replace")
    trips, tags = [], []
    for line in trace.splitlines():
        fields = line.split("\t")
        if len(fields) > 3 and fields[1] == "B" and fields[3] == "CommandComplete":
            tags.append(fields[4].strip().strip('"').split()[0])
        elif len(fields) > 3 and fields[1] == "B" and fields[3] == "ReadyForQuery":
            trips.append(" ".join(tags))
            tags = []
    return trips


@pytest.mark.parametrize("dialect", ["postgresql"])
def test_a_batch_is_two_round_trips(db: Database) -> None:
    _batch(db, 100)             # creates the holder of the name (statements of its own)
    seen = _statements(db)
    trips = _round_trips(db, lambda: _batch(db, 250))
    assert seen == []           # nothing through SQLAlchemy's execution
    # The BEGIN and the claim (a SELECT over the upsert's RETURNING) in one
    # pipeline; the session UPDATE, the usage upsert and the COMMIT in another.
    assert trips == ["BEGIN SELECT", "UPDATE INSERT COMMIT"]
    with db.reader.connect() as conn:
        assert usage_store.get_usage(conn, "ann", MONTH) == Totals(60, 250, 1)
        [row] = session_store.list_sessions(conn)
    assert (row["in_octets"], row["packets"]) == (250, 2)


def test_on_sqlite_a_batch_runs_on_the_drivers_connection(sqlite_db: Database) -> None:
    _batch(sqlite_db, 100)
    seen = _statements(sqlite_db)
    _batch(sqlite_db, 250)
    # BEGIN, the claim's read, the UPDATE and the upsert: none went through
    # SQLAlchemy's statement execution.
    assert seen == []
    with sqlite_db.reader.connect() as conn:
        assert usage_store.get_usage(conn, "ann", MONTH) == Totals(60, 250, 1)
        [row] = session_store.list_sessions(conn)
    assert (row["in_octets"], row["packets"]) == (250, 2)


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_a_read_after_a_deferred_write_sees_it(db: Database) -> None:
    _batch(db, 100)
    with db.writer.begin() as conn:
        defer_writes(conn)
        record_accounting(conn, [acct_record(Status.INTERIM, T0 + 60, Totals(120, 900, 1),
                                             user_name="ann")],
                          period=parse_period_spec("monthly"), tz=UTC)
        # The queued UPDATE goes out before this SELECT.
        assert conn.execute(select(sessions.c.in_octets)).scalar_one() == 900
    with db.reader.connect() as conn:
        assert usage_store.get_usage(conn, "ann", MONTH) == Totals(120, 900, 1)


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_a_deferred_write_that_fails_fails_the_commit_as_a_data_error(db: Database) -> None:
    # sqlite3 refuses the value while binding it: a bare OverflowError.
    with pytest.raises((exc.DBAPIError, OverflowError)) as raised:
        _batch(db, 2**64)       # over BIGINT: refused by the UPDATE sent with the COMMIT
    assert is_data_error(raised.value)
    with db.reader.connect() as conn:
        assert session_store.list_sessions(conn) == []      # rolled back, placeholder too
    _batch(db, 100)             # the connection is usable again
    with db.reader.connect() as conn:
        assert usage_store.get_usage(conn, "ann", MONTH) == Totals(60, 100, 1)
