"""The accounting handler's batches on the real databases (thread hop gated); on
SQLite, batches written on the reactor's thread while the writer thread is idle."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry
from sqlalchemy import Connection
from twisted.internet.testing import MemoryReactorClock

from aaad.core.accounting.periods import parse_period_spec
from aaad.core.accounting.sessions import AcctRecord, Status, Totals
from aaad.daemon.accounting_handler import AccountingHandler
from aaad.daemon.batch import PassEnd
from aaad.daemon.metrics import Metrics
from aaad.store import sessions as session_store
from aaad.store import usage as usage_store
from aaad.store.database import SQLITE_BUSY_TIMEOUT_MS, Database
from tests.support.fakes import GatedExecutor
from tests.support.records import acct_record

T0 = 1_795_000_000


def rec(sid: str, octets: int) -> AcctRecord:
    return acct_record(Status.STOP, T0, Totals(60, octets, 1), user_name="ann",
                       acct_session_id=sid, client="nas", nas_address="10.0.0.1")


def test_one_unstorable_record_fails_alone_and_the_batch_commits(db: Database) -> None:
    gate = GatedExecutor()
    registry = CollectorRegistry()
    handler = AccountingHandler(db=db, executor=gate, reactor=MemoryReactorClock(),
                                metrics=Metrics(registry), period=parse_period_spec("monthly"),
                                tz=ZoneInfo("UTC"))
    first = handler._batches.submit(rec("a", 10))     # goes to the database alone
    results: dict[str, object] = {}
    later = {sid: handler._batches.submit(rec(sid, n))
             for sid, n in (("b", 20), ("bad", 2**64), ("c", 30))}
    for sid, d in [("a", first), *later.items()]:
        d.addCallbacks(lambda _, s=sid: results.__setitem__(s, "ok"),
                       lambda f, s=sid: results.__setitem__(s, f.value))
    gate.drain()
    assert results["a"] == results["b"] == results["c"] == "ok"
    assert isinstance(results["bad"], Exception)
    with db.reader.connect() as conn:
        sessions = {s["acct_session_id"] for s in session_store.list_sessions(conn)}
        usage = usage_store.get_usage(conn, "ann", 1793491200)   # 2026-11-01 UTC
    assert sessions == {"a", "b", "c"}
    assert usage == Totals(180, 60, 3)
    assert registry.get_sample_value("aaad_db_errors_total", {"kind": "accounting"}) == 1


def handler_at_pass_end(db: Database, gate: GatedExecutor
                        ) -> tuple[AccountingHandler, PassEnd, CollectorRegistry]:
    reactor = MemoryReactorClock()
    registry = CollectorRegistry()
    pass_end = PassEnd(reactor)
    handler = AccountingHandler(db=db, executor=gate, reactor=reactor, metrics=Metrics(registry),
                                period=parse_period_spec("monthly"), tz=ZoneInfo("UTC"),
                                pass_end=pass_end)
    return handler, pass_end, registry


def test_sqlite_batch_of_a_read_pass_is_written_on_the_reactor_thread(sqlite_db: Database) -> None:
    gate = GatedExecutor()
    handler, pass_end, registry = handler_at_pass_end(sqlite_db, gate)
    pass_end.begin()
    ds = [handler._batches.submit(rec(sid, n)) for sid, n in (("a", 10), ("b", 20))]
    pass_end.end()
    # Committed and answered with no job for the writer thread.
    assert gate.jobs == [] and gate.jobs_run == 0
    assert [d.result for d in ds] == [None, None]
    with sqlite_db.reader.connect() as conn:
        assert {s["acct_session_id"] for s in session_store.list_sessions(conn)} == {"a", "b"}
        assert usage_store.get_usage(conn, "ann", 1793491200) == Totals(120, 30, 2)
    assert registry.get_sample_value("aaad_db_batch_size_count", {"kind": "accounting"}) == 1


def test_a_taken_write_lock_sends_the_batch_to_the_writer_thread_at_once(
        sqlite_db: Database, tmp_path: Path) -> None:
    gate = GatedExecutor()
    handler, pass_end, registry = handler_at_pass_end(sqlite_db, gate)
    other = sqlite3.connect(tmp_path / "aaad.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")            # another process writes (an aaad command)
    try:
        t0 = time.monotonic()
        pass_end.begin()
        d = handler._batches.submit(rec("a", 10))
        pass_end.end()
        # The reactor did not wait out the busy timeout (10 s): the batch is
        # the writer thread's now, unanswered.
        assert time.monotonic() - t0 < 2
        assert len(gate.jobs) == 1 and not d.called
    finally:
        other.rollback()
        other.close()
    gate.drain()                                # the lock is free: the thread commits it
    assert d.called and d.result is None
    with sqlite_db.reader.connect() as conn:
        assert [s["acct_session_id"] for s in session_store.list_sessions(conn)] == ["a"]
        assert usage_store.get_usage(conn, "ann", 1793491200) == Totals(60, 10, 1)
    assert registry.get_sample_value("aaad_db_errors_total", {"kind": "accounting"}) in (None, 0)
    # The lock is free again: the next pass's batch is done here, on a
    # connection that does not wait; the pool's connections still wait, as
    # the writer thread's batches must.
    pass_end.begin()
    later = handler._batches.submit(rec("b", 5))
    pass_end.end()
    assert later.called and gate.jobs == []
    assert handler._here_conn is not None
    assert busy_timeout(handler._here_conn) == 0
    with sqlite_db.writer.connect() as conn:
        assert busy_timeout(conn) == SQLITE_BUSY_TIMEOUT_MS
    handler.close()
    assert handler._here_conn is None
    with sqlite_db.writer.connect() as a, sqlite_db.writer.connect() as b:
        assert busy_timeout(a) == busy_timeout(b) == SQLITE_BUSY_TIMEOUT_MS


def busy_timeout(conn: Connection) -> int:
    """The SQLite busy timeout of ``conn``, asked of the driver (no transaction:
    SQLAlchemy's would take the writer's lock)."""
    return int(conn.connection.driver_connection.execute(  # type: ignore[union-attr]
        "PRAGMA busy_timeout").fetchone()[0])
