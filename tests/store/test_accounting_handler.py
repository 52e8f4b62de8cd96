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
from aaad.store.database import SQLITE_BUSY_TIMEOUT_MS, Database, sqlite_no_wait_connection
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


def traced(handler: AccountingHandler) -> list[str]:
    """The statements the handler's reactor-thread connection runs from now on
    (SQLite's trace of its driver connection; the connection is opened if
    need be)."""
    if handler._here_conn is None:
        handler._here_conn = sqlite_no_wait_connection(handler._db.writer)
    statements: list[str] = []
    handler._here_conn.connection.driver_connection.set_trace_callback(  # type: ignore[union-attr]
        statements.append)
    return statements


def at_pass_end(pass_end: PassEnd, handler: AccountingHandler, r: AcctRecord) -> object:
    """One record as the only request of a read pass; its answer (None: answered)."""
    pass_end.begin()
    d = handler._batches.submit(r)
    pass_end.end()
    assert d.called
    return d.result


def session_rec(status: Status, at: int, totals: Totals) -> AcctRecord:
    return acct_record(status, at, totals, user_name="ann", acct_session_id="k",
                       client="nas", nas_address="10.0.0.1")


def test_a_known_sessions_records_are_written_without_reading_them(
        sqlite_db: Database) -> None:
    gate = GatedExecutor()
    handler, pass_end, registry = handler_at_pass_end(sqlite_db, gate)
    assert at_pass_end(pass_end, handler, session_rec(Status.START, T0, Totals(0, 0, 0))) is None
    statements = traced(handler)
    for r in (session_rec(Status.INTERIM, T0 + 60, Totals(60, 1000, 10)),
              session_rec(Status.INTERIM, T0 + 60, Totals(60, 1000, 10)),   # again
              session_rec(Status.STOP, T0 + 90, Totals(90, 1500, 20))):
        assert at_pass_end(pass_end, handler, r) is None
    # Each a transaction of its own: the session's guarded UPDATE and the
    # usage upsert (none for the retransmitted totals: nothing to add), no
    # read, and nothing for the writer thread.
    assert gate.jobs_run == 0
    assert [s.split()[0] for s in statements] == ["BEGIN", "UPDATE", "INSERT", "COMMIT",
                                                  "BEGIN", "UPDATE", "COMMIT",
                                                  "BEGIN", "UPDATE", "INSERT", "COMMIT"]
    with sqlite_db.reader.connect() as conn:
        [row] = session_store.list_sessions(conn)
        assert (row["active"], row["session_s"], row["in_octets"], row["out_octets"],
                row["packets"]) == (False, 90, 1500, 20, 4)
        assert usage_store.get_usage(conn, "ann", 1793491200) == Totals(90, 1500, 20)
    assert registry.get_sample_value("aaad_accounting_records_total", {"status": "interim"}) == 2
    assert registry.get_sample_value("aaad_accounting_octets_total", {"direction": "in"}) == 1500


def test_a_known_session_another_writer_changed_is_read_and_counted_once(
        sqlite_db: Database) -> None:
    gate = GatedExecutor()
    handler, pass_end, _ = handler_at_pass_end(sqlite_db, gate)
    at_pass_end(pass_end, handler, session_rec(Status.START, T0, Totals(0, 0, 0)))
    at_pass_end(pass_end, handler, session_rec(Status.INTERIM, T0 + 60,
                                               Totals(60, 1000, 10)))
    # Another node took the session further (its usage included) meanwhile.
    with sqlite_db.writer.begin() as conn:
        conn.exec_driver_sql("UPDATE sessions SET session_s = 80, in_octets = 1200, "
                             "out_octets = 15, packets = packets + 1, updated_at = ?",
                             (T0 + 80,))
        usage_store.add_usage(conn, {("ann", 1793491200): (Totals(20, 200, 5),
                                                           Totals(20, 200, 5))})
    statements = traced(handler)
    assert at_pass_end(pass_end, handler, session_rec(Status.STOP, T0 + 90,
                                                      Totals(90, 1500, 20))) is None
    # The guard found the row changed: rolled back, then read and written.
    assert statements[:3] == [statements[0], statements[1], "ROLLBACK"]
    assert any(s.startswith("SELECT") for s in statements[3:])
    with sqlite_db.reader.connect() as conn:
        [row] = session_store.list_sessions(conn)
        assert (row["active"], row["session_s"], row["in_octets"], row["packets"]) == \
            (False, 90, 1500, 4)
        assert usage_store.get_usage(conn, "ann", 1793491200) == Totals(90, 1500, 20)


def test_a_known_sessions_record_waits_for_the_writer_thread_when_the_lock_is_taken(
        sqlite_db: Database, tmp_path: Path) -> None:
    gate = GatedExecutor()
    handler, pass_end, _ = handler_at_pass_end(sqlite_db, gate)
    at_pass_end(pass_end, handler, session_rec(Status.START, T0, Totals(0, 0, 0)))
    other = sqlite3.connect(tmp_path / "aaad.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        pass_end.begin()
        d = handler._batches.submit(session_rec(Status.STOP, T0 + 90, Totals(90, 1500, 20)))
        pass_end.end()
        assert len(gate.jobs) == 1 and not d.called
    finally:
        other.rollback()
        other.close()
    gate.drain()
    assert d.called and d.result is None
    with sqlite_db.reader.connect() as conn:
        assert usage_store.get_usage(conn, "ann", 1793491200) == Totals(90, 1500, 20)
