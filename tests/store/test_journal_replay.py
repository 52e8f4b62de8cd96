"""The accounting handler with the outage journal, on the real databases.

The database is taken away by a TCP proxy in front of the shared server (or
was never reached: records journaled by a previous run); replay goes through
the real accounting transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry
from twisted.internet.testing import MemoryReactorClock

from aaad.core.accounting.periods import parse_period_spec
from aaad.core.accounting.sessions import AcctRecord, Status, Totals
from aaad.daemon.accounting_handler import AccountingHandler, JournalFullDrop
from aaad.daemon.executor import InlineExecutor
from aaad.daemon.journal import Journal
from aaad.daemon.metrics import Metrics
from aaad.store import sessions as session_store
from aaad.store import usage as usage_store
from aaad.store.database import Database, open_database
from tests.support.databases import empty_tables
from tests.support.records import acct_record
from tests.support.tcp_proxy import proxied

T0 = 1_795_000_000          # 2026-11-19 UTC
PERIOD = 1793491200          # 2026-11-01 UTC


@pytest.fixture
def db(db: Database) -> Iterator[Database]:
    """conftest's ``db``, emptied afterwards too: these sessions are dated in the
    past, and left open another test's sweeper would close them as stale."""
    yield db
    empty_tables(db)


def interim(sid: str, n: int) -> AcctRecord:
    return acct_record(Status.INTERIM, T0 + 60 * n, Totals(60 * n, 1000 * n, 7 * n),
                       user_name="ann", acct_session_id=sid, client="nas",
                       nas_address="10.0.0.1")


def handler_for(db: Database, journal: Journal, *, max_batch: int = 512,
                replay_per_turn: int = 4096) -> tuple[AccountingHandler, CollectorRegistry,
                                                      MemoryReactorClock]:
    registry = CollectorRegistry()
    reactor = MemoryReactorClock()
    h = AccountingHandler(db=db, executor=InlineExecutor(), reactor=reactor,
                          metrics=Metrics(registry), period=parse_period_spec("monthly"),
                          tz=ZoneInfo("UTC"), max_batch=max_batch, journal=journal,
                          replay_per_turn=replay_per_turn)
    return h, registry, reactor


def stored(db: Database) -> tuple[dict[str, int], Totals | None]:
    with db.reader.connect() as conn:
        sessions = {s["acct_session_id"]: s["session_s"] for s in session_store.list_sessions(conn)}
        return sessions, usage_store.get_usage(conn, "ann", PERIOD)


def journal_of(records: list[list[AcctRecord]], path: Path) -> Journal:
    j = Journal(path, max_bytes=10**7)
    j.open()
    for batch in records:
        j.append(batch)
    return j


SESSIONS = ["a", "b", "c"]
BATCHES = [[interim(s, n) for s in SESSIONS] for n in range(1, 7)]      # 6 entries of 3
EXPECTED = (dict.fromkeys(SESSIONS, 360), Totals(3 * 360, 3 * 6000, 3 * 42))


def test_replay_after_a_crash_between_commit_and_mark_counts_once(
        db: Database, tmp_path: Path) -> None:
    path = tmp_path / "journal"
    j = journal_of(BATCHES, path)
    h, registry, reactor = handler_for(db, j, max_batch=3, replay_per_turn=3)
    h.replay()                                       # one turn: one batch, marked
    assert j.pending_records == 15 and stored(db)[1] == Totals(180, 3000, 21)
    # The next batch reaches the database but the process dies before its mark.
    h._commit(BATCHES[1], now=None)
    j.close()
    j = Journal(path, max_bytes=10**7)                # the restarted daemon
    found = j.open()
    assert found.pending_records == 15
    h, registry, reactor = handler_for(db, j, max_batch=4)
    while j.pending_records:
        h.replay()
        reactor.advance(0)
    assert stored(db) == EXPECTED
    assert path.stat().st_size == 8                  # emptied to its magic
    assert registry.get_sample_value("aaad_journal_replayed_records_total") == 15
    assert registry.get_sample_value("aaad_journal_records") == 0


def test_records_answered_from_the_journal_wait_for_it(db: Database, tmp_path: Path) -> None:
    """While the journal holds records, new batches join it, so order is kept."""
    j = journal_of(BATCHES[:3], tmp_path / "journal")
    h, registry, _ = handler_for(db, j)
    results: list[object] = []
    h._batches.submit(interim("a", 7)).addBoth(results.append)
    assert results == [None] and j.pending_records == 10
    assert stored(db) == ({}, Totals(0, 0, 0))        # nothing overtook the journal
    h.replay()
    sessions, usage = stored(db)
    assert sessions == {"a": 420, "b": 180, "c": 180} and usage == Totals(780, 13000, 91)
    assert registry.get_sample_value("aaad_journal_written_records_total") == 1


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_database_cut_journal_answers_then_replays_exactly(db: Database, tmp_path: Path) -> None:
    proxy, url = proxied(db.url)
    behind = open_database(url)
    try:
        j = Journal(tmp_path / "journal", max_bytes=10**7)
        j.open()
        h, registry, _ = handler_for(behind, j)
        answered: list[object] = []

        def send(batch: list[AcctRecord]) -> None:
            for r in batch:
                h._batches.submit(r).addBoth(answered.append)
        send(BATCHES[0])
        assert j.pending_records == 0 and stored(db)[1] == Totals(180, 3000, 21)
        proxy.cut()
        for batch in BATCHES[1:4]:
            send(batch)
        assert answered == [None] * 12 and j.pending_records == 9
        assert registry.get_sample_value("aaad_database_up") == 0
        h.replay()                                   # still cut: nothing moves
        assert j.pending_records == 9
        assert registry.get_sample_value("aaad_journal_replay_failures_total") == 1
        proxy.restore()
        send(BATCHES[4])                             # back, but the journal goes first
        assert j.pending_records == 12
        h.replay()
        send(BATCHES[5])
        assert answered == [None] * 18 and j.pending_records == 0
        assert stored(db) == EXPECTED
        assert registry.get_sample_value("aaad_database_up") == 1
        assert registry.get_sample_value("aaad_journal_replayed_records_total") == 12
    finally:
        proxy.close()
        behind.dispose()


def test_a_full_journal_drops_and_counts(tmp_path: Path) -> None:
    # SQLite in a directory that does not exist: "unable to open database file".
    gone = open_database(f"sqlite:///{tmp_path}/gone/aaad.sqlite3")
    j = Journal(tmp_path / "journal", max_bytes=1200)
    j.open()
    h, registry, _ = handler_for(gone, j)
    results: list[object] = []
    for n in range(1, 10):
        h._batches.submit(interim("a", n)).addBoth(results.append)
    kept = [r for r in results if r is None]
    dropped = [r for r in results if r is not None]
    assert kept and dropped and len(kept) == j.pending_records
    assert all(isinstance(f.value, JournalFullDrop) for f in dropped)  # type: ignore[attr-defined]
    assert registry.get_sample_value("aaad_journal_full_dropped_records_total") == len(dropped)
    gone.dispose()
