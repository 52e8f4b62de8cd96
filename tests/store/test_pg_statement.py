"""PostgreSQL: a prepared statement run from a reactor's thread (daemon.pg_statement),
and the accounting batches of known sessions sent that way, on a real server and
a real epoll reactor (not installed globally; iterated here)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from twisted.internet.defer import Deferred
from twisted.internet.epollreactor import EPollReactor

from aaad.core.accounting.periods import parse_period_spec
from aaad.core.accounting.sessions import AcctRecord, Status, Totals
from aaad.credentials import VerifyCache
from aaad.daemon.access_handler import AuthHandler
from aaad.daemon.accounting_handler import AccountingHandler
from aaad.daemon.batch import PassEnd
from aaad.daemon.executor import InlineExecutor
from aaad.daemon.metrics import Metrics
from aaad.daemon.pg_statement import (
    PgStatement,
    StatementFailed,
    connect_prepared,
    driver_pq,
)
from aaad.store import sessions as session_store
from aaad.store import usage as usage_store
from aaad.store import users as user_store
from aaad.store.database import Database
from aaad.store.jobs.login import UserState
from aaad.store.sessions import KnownUser
from aaad.store.tables import sessions
from tests.support.fakes import GatedExecutor
from tests.support.records import acct_record

pytestmark = pytest.mark.parametrize("dialect", ["postgresql"])

T0 = 1_795_000_000
MONTH = 1793491200                  # 2026-11-01 UTC


@pytest.fixture
def reactor() -> Iterator[EPollReactor]:
    r = EPollReactor()
    yield r
    for reader in r.getReaders():
        r.removeReader(reader)


def settle(reactor: EPollReactor, d: Deferred[Any], timeout_s: float = 10) -> Any:
    """Iterate the reactor until ``d`` fired; its result (a Failure if it failed)."""
    results: list[Any] = []
    d.addBoth(results.append)
    end = time.monotonic() + timeout_s
    while not results:
        assert time.monotonic() < end, "the Deferred did not fire"
        reactor.iterate(0.01)
    return results[0]


def statement(db: Database, reactor: EPollReactor, sql: str, *,
              timeout: float = 10) -> PgStatement:
    conn = connect_prepared(db.writer, {b"t": sql, b"other": "SELECT 'other'"})
    return PgStatement(reactor, conn, timeout=timeout, pq=driver_pq(db.writer))


def backend_pid(s: PgStatement) -> int:
    return int(s._pg.backend_pid)


def terminate(db: Database, pid: int) -> None:
    with db.writer.begin() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})


def test_the_statement_gives_its_rows_without_blocking(db: Database,
                                                       reactor: EPollReactor) -> None:
    s = statement(db, reactor, "SELECT x::text FROM generate_series(1, $1::int) x")
    d = s.run(b"t", [b"3"])
    assert not d.called                 # sent; the answer comes through the reactor
    assert s.busy
    assert settle(reactor, d) == ["1", "2", "3"]
    assert not s.busy
    assert settle(reactor, s.run(b"t", [b"1"])) == ["1"]        # and again, prepared once
    assert settle(reactor, s.run(b"other", [])) == ["other"]    # another prepared with it
    s.close()
    assert s not in reactor.getReaders()


def test_a_server_error_fails_the_run_with_its_sqlstate(db: Database,
                                                        reactor: EPollReactor) -> None:
    s = statement(db, reactor, "SELECT $1::int::text")
    result = settle(reactor, s.run(b"t", [b"not a number"]))
    assert isinstance(result.value, StatementFailed)
    assert result.value.sqlstate == "22P02"
    assert not s.closed and not s.busy
    assert settle(reactor, s.run(b"t", [b"7"])) == ["7"]         # the connection serves on
    s.close()
    later = settle(reactor, s.run(b"t", [b"1"]))     # a closed statement fails at once
    assert isinstance(later.value, StatementFailed)
    assert s not in reactor.getReaders()


def test_a_connection_killed_mid_statement_fails_the_run(db: Database,
                                                         reactor: EPollReactor) -> None:
    s = statement(db, reactor, "SELECT pg_sleep($1::float8)::text")
    d = s.run(b"t", [b"5"])
    terminate(db, backend_pid(s))
    t0 = time.monotonic()
    result = settle(reactor, d)
    assert isinstance(result.value, StatementFailed)
    assert time.monotonic() - t0 < 4        # noticed when the socket failed, not at 5 s
    assert s.closed and s not in reactor.getReaders()


def test_a_connection_killed_between_statements_is_noticed(db: Database,
                                                           reactor: EPollReactor) -> None:
    s = statement(db, reactor, "SELECT $1::text")
    assert settle(reactor, s.run(b"t", [b"a"])) == ["a"]
    terminate(db, backend_pid(s))
    end = time.monotonic() + 5
    while not s.closed and time.monotonic() < end:
        reactor.iterate(0.01)
    assert s.closed and s not in reactor.getReaders()


def test_no_answer_in_time_fails_the_run(db: Database, reactor: EPollReactor) -> None:
    s = statement(db, reactor, "SELECT pg_sleep($1::float8)::text", timeout=0.3)
    t0 = time.monotonic()
    result = settle(reactor, s.run(b"t", [b"5"]))
    assert isinstance(result.value, StatementFailed)
    assert time.monotonic() - t0 < 3
    assert s.closed


# -- the accounting handler's batches of known sessions --------------------

def rec(status: Status, seconds: int, octets: int, sid: str = "s1") -> AcctRecord:
    return acct_record(status, T0 + seconds, Totals(seconds, octets, 1), user_name="ann",
                       acct_session_id=sid, client="nas", nas_address="10.0.0.1")


class Node:
    """An accounting handler on a real reactor, its writer thread gated."""

    def __init__(self, db: Database, reactor: EPollReactor) -> None:
        self.reactor = reactor
        self.gate = GatedExecutor()
        self.registry = CollectorRegistry()
        self.pass_end = PassEnd(reactor)
        self.handler = AccountingHandler(
            db=db, executor=self.gate, reactor=reactor, metrics=Metrics(self.registry),
            period=parse_period_spec("monthly"), tz=ZoneInfo("UTC"), pass_end=self.pass_end)

    def send(self, *records: AcctRecord) -> Deferred[Any]:
        """The records as one read pass; fires once every one is answered."""
        self.pass_end.begin()
        ds = [self.handler._batches.submit(r) for r in records]
        self.pass_end.end()
        done: Deferred[Any] = Deferred()
        results: list[Any] = []

        def one(result: Any) -> None:
            results.append(result)
            if len(results) == len(ds):
                done.callback(results)
        for d in ds:
            d.addBoth(one)
        return done

    def settle(self, d: Deferred[Any]) -> Any:
        """Run the reactor and the writer thread's jobs until ``d`` fired."""
        results: list[Any] = []
        d.addBoth(results.append)
        end = time.monotonic() + 10
        while not results:
            assert time.monotonic() < end, "not answered"
            self.gate.release()
            self.reactor.iterate(0.01)
        return results[0]

    def ready(self, connections: int = 1) -> None:
        """Connections for the statement open (opened on the writer thread)."""
        while len(self.handler._statements) < connections:
            self.handler._open_statement()
            self.gate.release()
            self.reactor.iterate(0.01)


@contextmanager
def row_locked(db: Database, sid: str) -> Iterator[None]:
    """The session's row locked by another transaction until the block ends."""
    with db.writer.connect() as blocker, blocker.begin():
        blocker.execute(sessions.select().where(sessions.c.acct_session_id == sid)
                        .with_for_update())
        yield


def spin(reactor: EPollReactor, turns: int) -> None:
    for _ in range(turns):
        reactor.iterate(0.01)


def usage(db: Database) -> Totals:
    with db.reader.connect() as conn:
        return usage_store.get_usage(conn, "ann", MONTH)


def test_a_known_sessions_records_go_in_one_statement_from_the_reactor(
        db: Database, reactor: EPollReactor) -> None:
    node = Node(db, reactor)
    node.ready()
    assert node.settle(node.send(rec(Status.START, 0, 0))) == [None]
    writer_jobs = node.gate.jobs_run
    # The session is known now: its next records are the statement's alone.
    d = node.send(rec(Status.INTERIM, 60, 100))
    assert not d.called and node.gate.jobs == []
    assert node.settle(d) == [None]
    assert node.gate.jobs_run == writer_jobs        # no job for the writer thread
    assert node.settle(node.send(rec(Status.INTERIM, 60, 100),     # a retransmission
                                 rec(Status.STOP, 90, 150))) == [None, None]
    assert node.gate.jobs_run == writer_jobs
    assert usage(db) == Totals(90, 150, 1)
    with db.reader.connect() as conn:
        [s] = session_store.list_sessions(conn)
    assert not s["active"] and s["session_s"] == 90
    assert node.registry.get_sample_value(
        "aaad_accounting_records_total", {"status": "interim"}) == 2
    node.handler.stop()
    assert node.handler._statements == []


def test_a_session_another_writer_changed_is_done_by_the_writer_thread(
        db: Database, reactor: EPollReactor) -> None:
    node = Node(db, reactor)
    node.ready()
    node.settle(node.send(rec(Status.START, 0, 0), rec(Status.START, 0, 0, sid="s2")))
    # Another node counted an Interim of s1 meanwhile (its own statement).
    other = Node(db, reactor)
    other.ready()
    other.settle(other.send(rec(Status.INTERIM, 30, 50)))
    jobs = node.gate.jobs_run
    assert node.settle(node.send(rec(Status.INTERIM, 60, 100),
                                 rec(Status.INTERIM, 60, 70, sid="s2"))) == [None, None]
    # s2 went in the statement; s1's guard failed, and the writer thread read
    # it and added only what the other node had not counted.
    assert node.gate.jobs_run == jobs + 1
    assert usage(db) == Totals(120, 170, 2)
    with db.reader.connect() as conn:
        rows = {r.acct_session_id: r for r in conn.execute(sessions.select())}
    assert rows["s1"].session_s == 60 and rows["s1"].in_octets == 100


def test_the_handler_says_when_the_running_statement_was_sent(db: Database,
                                                        reactor: EPollReactor) -> None:
    # What the busy-polling reactor asks (radius.busy_wait_us).
    node = Node(db, reactor)
    node.ready()
    node.settle(node.send(rec(Status.START, 0, 0)))
    assert node.handler.statement_sent_at() is None
    with row_locked(db, "s1"):          # the statement waits for the row
        before = time.monotonic()
        d = node.send(rec(Status.INTERIM, 60, 100))
        spin(reactor, 5)
        sent = node.handler.statement_sent_at()
        assert sent is not None and before <= sent <= time.monotonic() and not d.called
    assert node.settle(d) == [None]
    assert node.handler.statement_sent_at() is None


def test_a_connection_lost_mid_batch_leaves_the_batch_to_the_writer_thread(
        db: Database, reactor: EPollReactor) -> None:
    node = Node(db, reactor)
    node.ready()
    node.settle(node.send(rec(Status.START, 0, 0)))
    statement_ = node.handler._statements[0]     # the idle one the next batch takes
    with row_locked(db, "s1"):          # the statement waits for the row
        d = node.send(rec(Status.INTERIM, 60, 100))
        spin(reactor, 20)
        assert statement_.busy and not d.called
        terminate(db, backend_pid(statement_))
        end = time.monotonic() + 5
        while not statement_.closed and time.monotonic() < end:
            reactor.iterate(0.01)
        assert statement_.closed
    assert node.settle(d) == [None]     # answered: the writer thread did it
    assert usage(db) == Totals(60, 100, 1)
    # The next batch goes to the writer thread too (a new connection is
    # tried no sooner than RECONNECT_S), and counts once.
    assert node.settle(node.send(rec(Status.INTERIM, 120, 300))) == [None]
    assert usage(db) == Totals(120, 300, 1)


def test_a_batch_goes_out_while_another_is_in_flight_and_both_count_once(
        db: Database, reactor: EPollReactor) -> None:
    node = Node(db, reactor)
    node.ready(2)
    node.settle(node.send(rec(Status.START, 0, 0), rec(Status.START, 0, 0, sid="s2")))
    node.ready(2)
    jobs = node.gate.jobs_run
    with row_locked(db, "s1"):          # the first batch's statement waits for it
        first = node.send(rec(Status.INTERIM, 60, 100))
        spin(reactor, 10)
        # The next read pass's batch goes out on the other connection at
        # once, and is answered while the first still waits.
        second = node.send(rec(Status.INTERIM, 60, 70, sid="s2"))
        assert all(st.busy for st in node.handler._statements)
        assert node.settle(second) == [None]
        assert not first.called
        # A record of s1 while its first is in flight: its statement waits
        # for the same lock, finds the row changed by the first, and leaves
        # the record to the writer thread.
        third = node.send(rec(Status.INTERIM, 90, 150))
        spin(reactor, 10)
    assert node.settle(first) == [None]
    assert node.settle(third) == [None]
    assert usage(db) == Totals(90 + 60, 150 + 70, 2)
    assert node.gate.jobs_run == jobs + 1       # the third's record


def ann_and_a_node(db: Database, reactor: EPollReactor) -> tuple[int, Node]:
    """The operator's user "ann" (her id), and a node with both connections open."""
    with db.writer.begin() as conn:
        ann = user_store.add_user(conn, "ann", password_hash=None, password_cleartext="pw",
                                  plan=None, enabled=True, now=T0)
    node = Node(db, reactor)
    node.ready(2)
    return ann, node


def owners(db: Database) -> list[int]:
    with db.reader.connect() as conn:
        return list(conn.execute(sessions.select().with_only_columns(sessions.c.user_id))
                    .scalars())


def test_a_user_a_login_read_has_their_first_start_written_by_the_statement(
        db: Database, reactor: EPollReactor) -> None:
    ann, node = ann_and_a_node(db, reactor)
    auth = AuthHandler(db=db, reader=InlineExecutor(), hasher=InlineExecutor(),
                       reactor=reactor, metrics=Metrics(CollectorRegistry()),
                       cache=VerifyCache(max_entries=10, ttl_s=60, now=reactor.seconds),
                       on_users=node.handler.learn_users)
    [lookup] = auth._find(["ann"])
    assert isinstance(lookup.user, UserState) and lookup.user.row.id == ann
    jobs = node.gate.jobs_run
    # The Start of a new session of hers: one statement, no claim on the
    # writer thread.
    assert node.settle(node.send(rec(Status.START, 0, 0))) == [None]
    assert node.gate.jobs_run == jobs
    assert node.settle(node.send(rec(Status.INTERIM, 60, 100))) == [None]
    assert node.gate.jobs_run == jobs
    assert usage(db) == Totals(60, 100, 1)
    assert owners(db) == [ann]


def test_a_wrong_hint_about_a_user_costs_a_claim_not_a_wrong_count(
        db: Database, reactor: EPollReactor) -> None:
    ann, node = ann_and_a_node(db, reactor)
    node.handler.learn_users([("ann", KnownUser(ann + 1000, None))])    # not her id
    jobs = node.gate.jobs_run
    assert node.settle(node.send(rec(Status.START, 0, 0),
                                 rec(Status.INTERIM, 60, 100))) == [None, None]
    assert node.gate.jobs_run == jobs + 1       # the guard failed: claimed
    assert usage(db) == Totals(60, 100, 1)
    assert owners(db) == [ann]
