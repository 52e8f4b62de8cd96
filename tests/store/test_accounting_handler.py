"""The accounting handler's batches on the real databases (thread hop gated)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from prometheus_client import CollectorRegistry
from twisted.internet.testing import MemoryReactorClock

from aaad.core.accounting.periods import parse_period_spec
from aaad.core.accounting.sessions import AcctRecord, Status, Totals
from aaad.daemon.accounting_handler import AccountingHandler
from aaad.daemon.metrics import Metrics
from aaad.store import sessions as session_store
from aaad.store import usage as usage_store
from aaad.store.database import Database
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
