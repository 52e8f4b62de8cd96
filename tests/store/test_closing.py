"""Closed periods (store/closing.py) on the three databases: a closed month's
export never changes; what arrives late for it is an adjustment of the first
open month, reported once."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from aaad.core.accounting.periods import parse_period_spec
from aaad.core.accounting.sessions import Status, Totals
from aaad.store import ledger as ledger_store
from aaad.store.closing import close_period, export_period, months_between
from aaad.store.database import Database
from aaad.store.jobs.accounting_batch import record_accounting
from tests.support.billing import bounds
from tests.support.records import acct_record

BERLIN = ZoneInfo("Europe/Berlin")
MONTHLY = parse_period_spec("monthly", 1)


def at(*args: int) -> int:
    return int(datetime(*args, tzinfo=BERLIN).timestamp())


def stop(db: Database, when: int, seconds: int, sid: str = "s1", *, arrival: int) -> None:
    rec = acct_record(Status.STOP, when, Totals(seconds, 10 * seconds, 20 * seconds),
                      user_name="ann", acct_session_id=sid, arrival=arrival)
    with db.writer.begin() as conn:
        record_accounting(conn, [rec], period=MONTHLY, tz=BERLIN, now=arrival)


def charge(db: Database, ref: str, amount: int, period: int, now: int) -> None:
    with db.writer.begin() as conn:
        ledger_store.add_charge(conn, user_name="ann", kind="import", ref=ref,
                                period_start=period, amount=amount, quantity=1,
                                description="router rental", now=now)


def export(db: Database, label: str) -> list[dict[str, object]]:
    with db.reader.connect() as conn:
        return export_period(conn, label, bounds)


def close(db: Database, label: str, now: int) -> bool:
    with db.writer.begin() as conn:
        return close_period(conn, label, bounds, now=now)


def test_a_closed_month_never_changes_and_late_items_are_adjusted_once(db: Database) -> None:
    nov, dec = at(2026, 11, 1), at(2026, 12, 1)
    stop(db, at(2026, 11, 20), 600, arrival=at(2026, 11, 20))
    charge(db, "import:r1", 50000, nov, at(2026, 11, 21))
    before = export(db, "2026-11")
    assert close(db, "2026-11", at(2026, 12, 3))
    assert not close(db, "2026-11", at(2026, 12, 4))
    # Late: a Stop of another November session, and a November charge.
    stop(db, at(2026, 11, 30, 23), 300, "s2", arrival=at(2026, 12, 5))
    charge(db, "import:r2", 20000, nov, at(2026, 12, 5))
    charge(db, "import:d1", 7000, dec, at(2026, 12, 6))
    assert export(db, "2026-11") == before
    december = export(db, "2026-12")
    adjust = [x for x in december if x["description"] == "adjustment for 2026-11"]
    assert [(x["item"], x["ref"], x["seconds"], x["in_octets"], x["amount"]) for x in adjust] \
        == [("charge", "import:r2", 0, 0, 20000), ("usage", "", 300, 3000, 0)]
    assert december[-1]["item"] == "total" and december[-1]["amount"] == 27000
    assert all(x["period"] == "2026-12" for x in december)
    assert close(db, "2026-12", at(2027, 1, 2))
    assert export(db, "2026-12") == december
    assert [x for x in export(db, "2027-01") if x["item"] != "total"] == []   # reported once
    charge(db, "import:r3", 1000, nov, at(2027, 1, 3))                       # later still
    january = export(db, "2027-01")
    assert [(x["ref"], x["amount"], x["description"]) for x in january
            if x["item"] != "total"] == [("import:r3", 1000, "adjustment for 2026-11")]


def test_only_a_month_that_has_ended_can_be_closed(db: Database) -> None:
    with pytest.raises(ValueError, match="period 2026-12 has not ended yet"):
        close(db, "2026-12", at(2026, 12, 31, 23, 59))
    assert close(db, "2026-12", at(2027, 1, 1))


def test_an_open_month_between_keeps_the_adjustments_to_itself(db: Database) -> None:
    nov = at(2026, 11, 1)
    charge(db, "import:a", 100, nov, at(2026, 11, 2))
    close(db, "2026-11", at(2026, 12, 2))
    close(db, "2027-01", at(2027, 2, 2))        # December stays open
    charge(db, "import:late", 5, nov, at(2027, 2, 3))
    assert [x["ref"] for x in export(db, "2026-12") if x["item"] == "charge"] == ["import:late"]
    assert [x for x in export(db, "2027-02") if x["item"] != "total"] == []


def test_months_between() -> None:
    assert months_between("2026-11", "2027-02") == ["2026-12", "2027-01"]
    assert months_between("2026-11", "2026-12") == []


def test_months_close_by_themselves_after_the_configured_days(db: Database) -> None:
    from aaad.store.closing import close_ended, month_bounds
    charge(db, "import:sep", 100, at(2026, 9, 1), at(2026, 9, 2))
    with db.writer.begin() as conn:
        assert close_ended(conn, month_bounds(BERLIN), now=at(2026, 12, 5), after_days=5,
                           tz=BERLIN) == ["2026-09", "2026-10"]      # November: not 5 days yet
    with db.writer.begin() as conn:
        assert close_ended(conn, month_bounds(BERLIN), now=at(2026, 12, 6), after_days=5,
                           tz=BERLIN) == ["2026-11"]
        assert close_ended(conn, month_bounds(BERLIN), now=at(2026, 12, 6), after_days=5,
                           tz=BERLIN) == []
