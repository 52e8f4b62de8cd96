"""Rating in the accounting transaction on all three databases: calls closed by a
Stop, by a NAS reboot and by the stale sweeper are rated once."""

from __future__ import annotations

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
from aaad.store.jobs.accounting_batch import BatchOutcome, record_accounting, sweep_stale
from aaad.store.plans import plan_to_json
from tests.support.records import acct_record

UTC = ZoneInfo("UTC")
T0 = 1_790_000_000
RULES = CallRules(emergency_numbers=("112",))


def setup(db: Database, user: str) -> None:
    with db.writer.begin() as conn:
        rate_store.import_rates(conn, "t", parse_rates_csv([
            "prefix,description,price,connection_fee,increment", "4930,Berlin,0.10,0.05,60/6"]),
            T0)
        plan_store.save_plan(conn, "calls", plan_to_json(parse_plan(
            {"name": "calls", "rate_table": "t"})), T0)
        user_store.add_user(conn, user, password_hash=None, password_cleartext="pw", enabled=True,
                            plan="calls", now=T0)
        ledger_store.post(conn, user_name=user, amount=10000, kind="topup", ref=f"t:{user}",
                          description="", now=T0)


def rec(user: str, status: Status, at: int, s: int, *, sid: str = "c1",
        nas: str = "192.0.2.1") -> AcctRecord:
    return acct_record(status, at, Totals(s, 0, 0), user_name=user,
                       acct_session_id=sid if user else "", nas_key=nas, client="gw",
                       nas_address=nas, called_station_id="4930123" if user else None,
                       calling_station_id="4940999" if user else None,
                       terminate_cause="User-Request" if status is Status.STOP else None)


def apply(db: Database, records: list[AcctRecord], now: int) -> BatchOutcome:
    with db.writer.begin() as conn:
        return record_accounting(conn, records, period=PeriodSpec("monthly"), tz=UTC, now=now,
                                 calls=RULES)


def state(db: Database, user: str) -> tuple[int, list[tuple[int, int]]]:
    with db.reader.connect() as conn:
        return (ledger_store.balance_of(conn, user).balance,
                [(c["duration_s"], c["cost"]) for c in call_store.list_calls(conn, user=user)])


def test_stop_rates_once(db: Database) -> None:
    user = f"stop-{db.dialect}"
    setup(db, user)
    start, stop = rec(user, Status.START, T0, 0), rec(user, Status.STOP, T0 + 61, 61)
    first = apply(db, [start, stop, stop], T0 + 61)
    again = apply(db, [stop], T0 + 62)
    assert state(db, user) == (10000 - 1600, [(61, 1600)])
    assert (first.calls_rated, first.charged_money) == (1, 1600)
    assert (again.calls_rated, again.charged_money) == (0, 0)


def test_stale_call_is_rated_on_its_last_duration_and_a_late_stop_corrects_it_once(
        db: Database) -> None:
    user = f"stale-{db.dialect}"
    setup(db, user)
    apply(db, [rec(user, Status.START, T0, 0), rec(user, Status.INTERIM, T0 + 61, 61)], T0 + 61)
    with db.writer.begin() as conn:
        assert sweep_stale(conn, now=T0 + 10_000, default_interval_s=300, intervals=3, tz=UTC,
                           calls=RULES) >= 1
    assert state(db, user) == (10000 - 1600, [(61, 1600)])
    late = apply(db, [rec(user, Status.STOP, T0 + 90, 90)], T0 + 10_001)
    assert state(db, user) == (10000 - 2000, [(90, 2000)])      # 90 s: 0.15 + 0.05
    assert (late.calls_corrected, late.charged_money) == (1, 400)
    again = apply(db, [rec(user, Status.STOP, T0 + 95, 95)], T0 + 10_002)
    assert state(db, user) == (10000 - 2000, [(90, 2000)])
    assert again.calls_corrected == 0


def test_nas_reboot_rates_the_calls_it_closes(db: Database) -> None:
    user = f"reboot-{db.dialect}"
    nas = f"198.51.100.{ {'sqlite': 1, 'postgresql': 2, 'mysql': 3}[db.dialect] }"
    setup(db, user)
    on = acct_record(Status.ACCOUNTING_ON, T0 + 200, Totals(0, 0, 0), user_name="",
                     acct_session_id="", nas_key=nas, client="gw", nas_address=nas)
    outcome = apply(db, [rec(user, Status.START, T0, 0, nas=nas),
                         rec(user, Status.INTERIM, T0 + 120, 120, nas=nas), on], T0 + 200)
    assert (outcome.calls_rated, outcome.charged_money) == (1, 2500)
    # 120 s billed at 0.10/min + 0.05
    assert state(db, user) == (10000 - 2500, [(120, 2500)])
