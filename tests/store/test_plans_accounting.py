"""Plans in the accounting transaction, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from aaad.core.accounting.periods import parse_period_spec, period_bounds
from aaad.core.accounting.sessions import AcctRecord, Status, Totals
from aaad.core.quotas.decide import Block, Reject, decide
from aaad.core.quotas.plan_parse import parse_plan
from aaad.store import blocks as block_store
from aaad.store import events as event_store
from aaad.store import ledger as ledger_store
from aaad.store import plans as plan_store
from aaad.store import usage as usage_store
from aaad.store import users as user_store
from aaad.store.database import Database
from aaad.store.jobs.accounting_batch import BatchOutcome, record_accounting
from aaad.store.jobs.rollover import rollover
from aaad.store.plans import load_plans, plan_to_json
from tests.support.records import acct_record

BERLIN = ZoneInfo("Europe/Berlin")
MONTHLY = parse_period_spec("monthly", 1)


def at(*args: int) -> int:
    return int(datetime(*args, tzinfo=BERLIN).timestamp())


def rec(status: Status, t: int, s: int = 0, i: int = 0, o: int = 0, *, sid: str = "s1",
        user: str = "pat") -> AcctRecord:
    return acct_record(status, t, Totals(s, i, o), user_name=user, acct_session_id=sid,
                       client="nas", nas_address="10.0.0.1", framed_ip="100.64.0.7")


def setup(db: Database, plan: dict[str, object], user: str = "pat") -> None:
    p = parse_plan(plan)
    with db.writer.begin() as conn:
        plan_store.save_plan(conn, p.name, plan_to_json(p), 0)
        user_store.add_user(conn, user, password_hash=None, password_cleartext="x", plan=p.name,
                            enabled=True, now=0)


def apply(db: Database, records: list[AcctRecord], now: int | None = None) -> BatchOutcome:
    with db.writer.begin() as conn:
        return record_accounting(conn, records, period=MONTHLY, tz=BERLIN, now=now)


def counted(db: Database, user: str, t: int) -> tuple[Totals, Totals]:
    start = period_bounds(MONTHLY, BERLIN, t)[0]
    with db.reader.connect() as conn:
        r = usage_store.counted_usage(conn, [(user, start)])[(user, start)]
    return (Totals(r.session_s, r.in_octets, r.out_octets),
            Totals(r.counted_s, r.counted_in_octets, r.counted_out_octets))


OFFPEAK = {"name": "night", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
           "from": "22:00", "to": "07:00", "weight": 0}


def test_peak_offpeak_boundary_inside_one_interim_splits_by_weight(db: Database) -> None:
    setup(db, {"name": "nights-free", "time_limit": "10h", "octets_limit": "10GB",
               "bands": [OFFPEAK]})
    t0 = at(2026, 11, 24, 21, 30)
    apply(db, [rec(Status.START, t0)])
    apply(db, [rec(Status.INTERIM, t0 + 3600, 3600, 6000, 600)])    # 21:30 → 22:30
    raw, cnt = counted(db, "pat", t0)
    assert raw == Totals(3600, 6000, 600)
    assert cnt == Totals(1800, 3000, 300)           # only the half before 22:00 counts
    with db.reader.connect() as conn:
        bands = usage_store.band_usage(conn, "pat", period_bounds(MONTHLY, BERLIN, t0)[0])
    assert bands["peak"] == Totals(1800, 3000, 300)
    assert bands["night"] == Totals(1800, 3000, 300)


def test_weighted_counting_is_exact_however_interims_chop_it(db: Database) -> None:
    half = dict(OFFPEAK, name="half", weight="1/3", **{"from": "00:00", "to": "24:00"})
    setup(db, {"name": "third", "bands": [half]})
    t0 = at(2026, 11, 3, 10, 0)
    records = [rec(Status.START, t0)] + [rec(Status.INTERIM, t0 + 7 * k, 7 * k, 10 * k, 0)
                                         for k in range(1, 30)]
    for r in records:
        apply(db, [r])
    raw, cnt = counted(db, "pat", t0)
    assert raw == Totals(203, 290, 0)
    assert cnt == Totals(203 // 3, 290 // 3, 0)     # floor(w × total), not Σ floor(w × part)


def test_bill_charges_overage_once_per_session_and_period(db: Database) -> None:
    setup(db, {"name": "billed", "time_limit": "1h", "over_limit": "bill",
               "overage_price": {"per_hour": "1.20"}})
    t0 = at(2026, 11, 5, 9, 0)
    apply(db, [rec(Status.START, t0), rec(Status.INTERIM, t0 + 3600, 3600)])
    assert apply(db, [rec(Status.INTERIM, t0 + 4500, 4500)]).charged_money == 3000   # 15 min
    again = apply(db, [rec(Status.INTERIM, t0 + 4500, 4500), rec(Status.STOP, t0 + 5400, 5400)])
    assert again.charged_money == 3000
    with db.reader.connect() as conn:
        rows = ledger_store.list_charges(conn, user="pat")
    assert [(r["kind"], r["amount"], r["quantity"]) for r in rows] == [
        ("overage", 6000, 1800)]                    # 30 min above the cap × 1.20/h
    apply(db, [rec(Status.STOP, t0 + 5400, 5400)])                           # a retransmit
    with db.reader.connect() as conn:
        assert [r["amount"] for r in ledger_store.list_charges(conn, user="pat")] == [6000]


def test_block_used_across_months_expires_after_its_days(db: Database) -> None:
    setup(db, {"name": "blocks", "block": {"hours": 100, "valid_days": 365, "on_exhaust": "cutoff",
                                           "price": "49.00"}})
    bought = at(2026, 1, 10, 12, 0)
    with db.writer.begin() as conn:
        block_store.add_block(conn, "pat", seconds=100 * 3600, purchased_at=bought,
                              expires_at=bought + 365 * 86400, ref="sale-1")
    jan, feb = at(2026, 1, 20, 10, 0), at(2026, 2, 20, 10, 0)
    apply(db, [rec(Status.START, jan, sid="a"), rec(Status.STOP, jan + 30 * 3600, 30 * 3600,
                                                     sid="a")], now=jan + 30 * 3600)
    apply(db, [rec(Status.START, feb, sid="b"), rec(Status.STOP, feb + 40 * 3600, 40 * 3600,
                                                     sid="b")], now=feb + 40 * 3600)
    with db.reader.connect() as conn:
        [block] = block_store.list_blocks(conn, "pat")
        plan = load_plans(conn, ["pat"])["pat"]
    assert block["seconds_used"] == 70 * 3600
    left = [Block(block["id"], block["seconds_total"] - block["seconds_used"], block["expires_at"])]
    day365 = bought + 365 * 86400 - 1
    ok = decide(plan, enabled=True, used=Totals(0, 0, 0), open_sessions=0, blocks=left,
                now=day365, tz=BERLIN)
    assert not isinstance(ok, Reject) and ok.session_timeout_s == 1   # one second left of day 365
    gone = decide(plan, enabled=True, used=Totals(0, 0, 0), open_sessions=0, blocks=left,
                  now=bought + 365 * 86400, tz=BERLIN)
    assert isinstance(gone, Reject) and gone.reason == "block_exhausted"
    with db.writer.begin() as conn:
        events = rollover(conn, now=bought + 366 * 86400, tz=BERLIN)
        assert rollover(conn, now=bought + 366 * 86400 + 60, tz=BERLIN) == []   # once
    assert any("expired with 30h 0m unused" in e for e in events)


def test_renew_sells_the_next_block_with_a_ledger_charge(db: Database) -> None:
    setup(db, {"name": "renewing", "block": {"hours": 1, "valid_days": 30, "on_exhaust": "renew",
                                             "price": "5.00"}})
    t0 = at(2026, 11, 2, 8, 0)
    with db.writer.begin() as conn:
        block_store.add_block(conn, "pat", seconds=3600, purchased_at=t0 - 60,
                              expires_at=t0 + 30 * 86400, ref="first")
    out = apply(db, [rec(Status.START, t0), rec(Status.STOP, t0 + 5400, 5400)], now=t0 + 5400)
    assert out.charged_money == 50000
    with db.reader.connect() as conn:
        blocks = block_store.list_blocks(conn, "pat")
        charges = ledger_store.list_charges(conn, user="pat")
        events = event_store.list_events(conn, user="pat")
    assert [(b["seconds_total"], b["seconds_used"]) for b in blocks] == [(3600, 3600), (3600, 1800)]
    assert [(c["kind"], c["amount"]) for c in charges] == [("block", 50000)]
    assert [e["kind"] for e in events] == ["block_renewed"]


def test_disconnect_plan_reports_the_live_session_that_crossed_the_cap(db: Database) -> None:
    setup(db, {"name": "cut", "time_limit": "10m", "over_limit": "disconnect"})
    t0 = at(2026, 11, 6, 12, 0)
    assert apply(db, [rec(Status.START, t0)], now=t0).over_limit == ()
    assert apply(db, [rec(Status.INTERIM, t0 + 300, 300)], now=t0 + 300).over_limit == ()
    out = apply(db, [rec(Status.INTERIM, t0 + 660, 660)], now=t0 + 660)
    [item] = out.over_limit
    assert (item.user_name, item.acct_session_id, item.reason) == ("pat", "s1", "time_limit")
    assert (item.nas_address, item.framed_ip, item.client) == ("10.0.0.1", "100.64.0.7", "nas")
    assert apply(db, [rec(Status.STOP, t0 + 700, 700)], now=t0 + 700).over_limit == ()


def test_rollover_records_each_period_once(db: Database) -> None:
    setup(db, {"name": "monthly-plan", "time_limit": "1h"})
    with db.writer.begin() as conn:
        first = rollover(conn, now=at(2026, 12, 1, 0, 1), tz=BERLIN)
        again = rollover(conn, now=at(2026, 12, 1, 0, 2), tz=BERLIN)
        jan = rollover(conn, now=at(2027, 1, 1, 0, 1), tz=BERLIN)
    assert first == ["plan monthly-plan: period 2026-12 began"]
    assert again == []
    assert jan == ["plan monthly-plan: period 2027-01 began"]


def _lock_waiters(db: Database) -> int:
    """Other connections of this database waiting for a row lock right now."""
    with db.reader.connect() as conn:
        if conn.dialect.name == "postgresql":
            q = ("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                 "AND wait_event_type = 'Lock'")
        else:               # innodb_trx does not always show the wait; the statement does
            q = ("SELECT count(*) FROM information_schema.processlist WHERE db = DATABASE() "
                 "AND id <> CONNECTION_ID() AND command = 'Query' AND info LIKE '%FOR UPDATE%'")
        return int(conn.execute(text(q)).scalar() or 0)


@pytest.mark.parametrize("dialect", ["postgresql", "mysql"])
def test_rollover_on_two_nodes_at_the_same_moment_records_once(db: Database) -> None:
    """Both nodes' sweepers run the rollover at once: the second waits for the first's
    row locks, then finds its events (SQLite's writers are serialised by BEGIN IMMEDIATE)."""
    setup(db, {"name": "monthly-plan", "time_limit": "1h"})
    now = at(2026, 12, 1, 0, 1)
    with db.writer.begin() as conn:
        block_store.add_block(conn, "pat", seconds=3600, purchased_at=now - 86400,
                              expires_at=now - 60, ref="gone")

    def other_node() -> list[str]:
        with db.writer.begin() as conn:
            return rollover(conn, now=now + 1, tz=BERLIN)

    with db.writer.connect() as conn, ThreadPoolExecutor(1) as pool:
        tx = conn.begin()
        first = rollover(conn, now=now, tz=BERLIN)
        other = pool.submit(other_node)
        deadline = time.monotonic() + 30
        while not other.done() and _lock_waiters(db) == 0:   # blocked on our locks, or done
            assert time.monotonic() < deadline, "the other node neither finished nor waited"
            time.sleep(0.01)
        tx.commit()
        second = other.result(timeout=30)
    assert first == ["plan monthly-plan: period 2026-12 began",
                     f"block {first[1].split()[1]} of pat expired with 1h 0m unused"]
    assert second == []
    with db.reader.connect() as conn:
        assert len(event_store.list_events(conn, kind="rollover")) == 1
        assert len(event_store.list_events(conn, kind="block_expired")) == 1


def test_a_changed_plan_counts_from_the_next_batch(db: Database) -> None:
    """Plans are read with the sessions in every batch: a change made by
    another node between two batches is seen by the second."""
    setup(db, {"name": "nights-free", "bands": [OFFPEAK]})
    flat = parse_plan({"name": "flat"})
    t0 = at(2026, 11, 24, 23, 0)
    apply(db, [rec(Status.START, t0)])
    apply(db, [rec(Status.INTERIM, t0 + 600, 600, 6000, 600)])
    assert counted(db, "pat", t0)[1] == Totals(0, 0, 0)
    with db.writer.begin() as conn:
        plan_store.save_plan(conn, flat.name, plan_to_json(flat), 0)
        user_store.update_user(conn, "pat", now=0, plan=flat.name)
    apply(db, [rec(Status.INTERIM, t0 + 1200, 1200, 12000, 1200)])
    assert counted(db, "pat", t0) == (Totals(1200, 12000, 1200), Totals(600, 6000, 600))
