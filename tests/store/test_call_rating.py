"""Rating at band boundaries, per-second and inbound rates, and unrated calls, in the
accounting transaction on all three databases: the CDR's new columns (migration
0025), the batch outcome and the sweeper's tally the daemon turns into metrics."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from aaad.core.accounting.periods import PeriodSpec
from aaad.core.accounting.sessions import AcctRecord, Status, Totals
from aaad.core.quotas.plan_parse import parse_plan
from aaad.core.telephony.rate_table import parse_rates_csv
from aaad.store import calls as call_store
from aaad.store import ledger as ledger_store
from aaad.store import plans as plan_store
from aaad.store import rates as rate_store
from aaad.store import users as user_store
from aaad.store.calls import CallRules
from aaad.store.database import Database
from aaad.store.jobs.accounting_batch import (
    BatchOutcome,
    RatingTally,
    record_accounting,
    sweep_stale,
)
from aaad.store.plans import plan_to_json
from aaad.store.reports import call_view
from tests.support.records import acct_record

BERLIN = ZoneInfo("Europe/Berlin")
# Wednesday 2026-12-02 19:50 in Berlin: 10 minutes before off-peak.
T0 = int(datetime(2026, 12, 2, 19, 50, tzinfo=BERLIN).timestamp())
RULES = CallRules(emergency_numbers=("112",))
OUT = """\
prefix,description,price,connection_fee,increment,band,unit
4917,Germany mobile,0.19,0,60/60,,
4917,Germany mobile off-peak,0.15,0,60/60,offpeak,
4930,Berlin,0.0005,0,1/1,,s
"""
IN = """\
prefix,description,price,connection_fee,increment
4915,From German mobiles,0.01,0,1/1
"""


def setup(db: Database, user: str) -> None:
    with db.writer.begin() as conn:
        rate_store.import_rates(conn, "out", parse_rates_csv(OUT.splitlines()), T0)
        rate_store.import_rates(conn, "in", parse_rates_csv(IN.splitlines()), T0)
        plan_store.save_plan(conn, "banded", plan_to_json(parse_plan({
            "name": "banded", "rate_table": "out", "inbound_rate_table": "in",
            "bands": [{"name": "offpeak", "from": "20:00", "to": "08:00", "weight": 1}]})), T0)
        user_store.add_user(conn, user, password_hash=None, password_cleartext="pw", enabled=True,
                            plan="banded", now=T0)
        ledger_store.post(conn, user_name=user, amount=100_000, kind="topup", ref=f"t:{user}",
                          description="", now=T0)


def rec(user: str, status: Status, at: int, s: int, sid: str, called: str,
        direction: str | None = None, caller: str = "4940999") -> AcctRecord:
    return acct_record(status, at, Totals(s, 0, 0), user_name=user, acct_session_id=sid,
                       nas_key="192.0.2.9", client="gw", nas_address="192.0.2.9",
                       called_station_id=called, calling_station_id=caller, direction=direction,
                       terminate_cause="User-Request" if status is Status.STOP else None)


def call(db: Database, user: str, sid: str, called: str, seconds: int, *,
         direction: str | None = None, caller: str = "4940999") -> BatchOutcome:
    records = [rec(user, Status.START, T0, 0, sid, called, direction, caller),
               rec(user, Status.STOP, T0 + seconds, seconds, sid, called, direction, caller)]
    with db.writer.begin() as conn:
        return record_accounting(conn, records, period=PeriodSpec("monthly"), tz=BERLIN,
                                 now=T0 + seconds, calls=RULES)


def cdrs(db: Database, user: str) -> dict[str, dict[str, object]]:
    with db.reader.connect() as conn:
        return {r["session"]: r for r in map(call_view, call_store.list_calls(conn, user=user))}


def test_a_call_across_20_00_is_split_and_stored_with_its_bands(db: Database) -> None:
    user = f"split-{db.dialect}"
    setup(db, user)
    outcome = call(db, user, "split-1", "+49 170 1234567", 1200)
    assert (outcome.calls_rated, outcome.charged_money, outcome.calls_unrated) == (1, 34000, ())
    cdr = next(iter(cdrs(db, user).values()))
    assert {k: cdr[k] for k in ("direction", "band", "bands", "billed_s", "price", "unit",
                                "cost", "unrated")} == {
        "direction": "out", "band": "peak", "bands": "peak:600,offpeak:600", "billed_s": 1200,
        "price": "0.19", "unit": "min", "cost": "3.40", "unrated": None}
    with db.reader.connect() as conn:
        assert ledger_store.balance_of(conn, user).balance == 100_000 - 34000


def test_per_second_inbound_and_unrated_calls(db: Database) -> None:
    user = f"kinds-{db.dialect}"
    setup(db, user)
    assert call(db, user, "ps-1", "4930123", 61).charged_money == 305         # 61 × 0.0005
    inbound = call(db, user, "in-1", "4930555", 100, direction="in", caller="+49 151 777")
    assert (inbound.calls_rated, inbound.charged_money) == (1, 167)    # 100 s at 0.01/min
    nowhere = call(db, user, "no-1", "99123", 30)
    assert (nowhere.calls_rated, nowhere.charged_money) == (0, 0)
    [unrated] = nowhere.calls_unrated
    assert (unrated.reason, unrated.session_key, unrated.number, unrated.duration_s) == \
        ("no_rate", unrated.session_key, "99123", 30)
    by_dest = {c["destination"]: c for c in cdrs(db, user).values()}
    assert (by_dest["4930123"]["unit"], by_dest["4930123"]["price_per_minute"]) == ("s", "0.03")
    assert (by_dest["4930555"]["direction"], by_dest["4930555"]["prefix"]) == ("in", "4915")
    assert (by_dest["99123"]["unrated"], by_dest["99123"]["cost"], by_dest["99123"]["bands"]) \
        == ("no_rate", "0.00", "peak:30")


def test_calls_the_sweeper_closes_are_tallied(db: Database) -> None:
    user = f"sweep-{db.dialect}"
    setup(db, user)
    with db.writer.begin() as conn:
        record_accounting(conn, [rec(user, Status.START, T0, 0, "sw-1", "4930123"),
                                 rec(user, Status.INTERIM, T0 + 60, 60, "sw-1", "4930123"),
                                 rec(user, Status.START, T0, 0, "sw-2", "99"),
                                 rec(user, Status.INTERIM, T0 + 60, 60, "sw-2", "99")],
                          period=PeriodSpec("monthly"), tz=BERLIN, now=T0 + 60, calls=RULES)
    tally = RatingTally()
    with db.writer.begin() as conn:
        assert sweep_stale(conn, now=T0 + 10_000, default_interval_s=300, intervals=3,
                           tz=BERLIN, calls=RULES, tally=tally) >= 2
    assert (tally.rated, tally.money) == (1, 300)
    assert [(u.reason, u.number) for u in tally.unrated] == [("no_rate", "99")]
