"""SIP proxies' calls on all three databases: records keyed by the Call-ID with no
User-Name or the callee's, durations from Event-Timestamps, missed calls, calls of
a client without Interim-Updates closed at the maximum duration and corrected
once by their Stop, and credit overruns (aaad/store/jobs/accounting_batch.py)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from sqlalchemy import select

from aaad.core.accounting.periods import PeriodSpec
from aaad.core.accounting.sessions import UNATTRIBUTED, AcctRecord, Status
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
from aaad.store.tables import events, sessions
from tests.support.records import acct_record

UTC = ZoneInfo("UTC")
T0 = 1_790_000_000
RULES = CallRules(emergency_numbers=("112",))
# 0.10 a minute + 0.05 to connect, per second after the first minute: 1/10,000 units.
PRICE, FEE = 1000, 500


def cost(seconds: int) -> int:
    """The rate's price of a call (rate_table.cost: halves rounded up)."""
    return FEE + (2 * PRICE * max(seconds, 60) + 60) // 120


def setup(db: Database, user: str, balance: int = 10000) -> None:
    with db.writer.begin() as conn:
        rate_store.import_rates(conn, "t", parse_rates_csv([
            "prefix,description,price,connection_fee,increment", "4930,Berlin,0.10,0.05,60/1"]),
            T0)
        plan_store.save_plan(conn, "calls", plan_to_json(parse_plan(
            {"name": "calls", "rate_table": "t"})), T0)
        user_store.add_user(conn, user, password_hash=None, password_cleartext="pw", enabled=True,
                            plan="calls", now=T0)
        ledger_store.post(conn, user_name=user, amount=balance, kind="topup", ref=f"t:{user}",
                          description="", now=T0)


def sip(status: Status, at: int, call_id: str, user: str = "", **fields: object) -> AcctRecord:
    """A record as Kamailio's acc_radius sends it (no Acct-Session-Time), attributed
    (or not) the way the accounting handler does it."""
    return acct_record(status, at, user_name=user, acct_session_id=call_id, client="kam",
                       nas_key="192.0.2.5", nas_address="192.0.2.5", keyed_by_id=True,
                       session_time_sent=False, **fields)  # type: ignore[arg-type]


def apply(db: Database, records: list[AcctRecord], now: int) -> BatchOutcome:
    with db.writer.begin() as conn:
        return record_accounting(conn, records, period=PeriodSpec("monthly"), tz=UTC, now=now,
                                 calls=RULES)


def calls_of(db: Database, user: str) -> list[tuple[int, int, str | None, str]]:
    with db.reader.connect() as conn:
        return [(c["duration_s"], c["cost"], c["disposition"], c["destination"])
                for c in call_store.list_calls(conn, user=user)]


def balance(db: Database, user: str) -> int:
    with db.reader.connect() as conn:
        return ledger_store.balance_of(conn, user).balance


def event_kinds(db: Database) -> list[str]:
    with db.reader.connect() as conn:
        return list(conn.execute(select(events.c.kind).order_by(events.c.id)).scalars())


def test_stock_records_rated_from_start_and_stop_timestamps(db: Database) -> None:
    user = f"kam-{db.dialect}"
    setup(db, user)
    cid = f"call-a-{db.dialect}"
    apply(db, [sip(Status.START, T0, cid, user, called_station_id="4930123",
                   calling_station_id=user)], T0)
    # The callee hangs up: the Stop names the callee, or no one, and no number.
    out = apply(db, [sip(Status.STOP, T0 + 95, cid, "bob")], T0 + 95)
    assert out.calls_rated == 1
    assert calls_of(db, user) == [(95, cost(95), None, "4930123")]
    assert balance(db, user) == 10000 - cost(95)
    assert calls_of(db, "bob") == []


def test_failed_record_is_a_missed_call_that_costs_nothing(db: Database) -> None:
    user = f"busy-{db.dialect}"
    setup(db, user)
    out = apply(db, [sip(Status.FAILED, T0, f"call-b-{db.dialect}", user,
                         called_station_id="4930123", terminate_cause="SIP-486")], T0)
    assert out.calls_missed == 1 and out.calls_rated == 0
    assert calls_of(db, user) == [(0, 0, "missed", "4930123")]
    assert balance(db, user) == 10000


def test_unattributed_records_are_stored_and_counted(db: Database) -> None:
    cid = f"call-u-{db.dialect}"
    out = apply(db, [sip(Status.START, T0, cid, UNATTRIBUTED)], T0)
    assert out.unattributed == (cid,)
    again = apply(db, [sip(Status.STOP, T0 + 30, cid, UNATTRIBUTED)], T0 + 30)
    assert again.unattributed == ()
    with db.reader.connect() as conn:
        row = conn.execute(select(sessions.c.user_name, sessions.c.session_s, sessions.c.active)
                           .where(sessions.c.acct_session_id == cid)).one()
    assert tuple(row) == (UNATTRIBUTED, 30, False)


def test_no_interims_call_outlives_the_stale_window_and_the_max_duration(db: Database) -> None:
    user = f"long-{db.dialect}"
    setup(db, user)
    cid = f"call-l-{db.dialect}"
    apply(db, [sip(Status.START, T0, cid, user, called_station_id="4930123")], T0)
    with db.writer.begin() as conn:       # far past 3 × 300 s: not stale for this client
        sweep_stale(conn, now=T0 + 3000, default_interval_s=300, intervals=3, tz=UTC,
                    calls=RULES, no_interims=("kam",), max_call_duration_s=3600)
    assert calls_of(db, user) == []
    with db.writer.begin() as conn:
        assert sweep_stale(conn, now=T0 + 3601, default_interval_s=300, intervals=3, tz=UTC,
                           calls=RULES, no_interims=("kam",), max_call_duration_s=3600) == 1
    assert calls_of(db, user) == [(3600, cost(3600), None, "4930123")]
    assert "call_max_duration" in event_kinds(db)
    # The real Stop: a longer call, corrected once, the difference debited.
    out = apply(db, [sip(Status.STOP, T0 + 4000, cid)], T0 + 4001)
    assert out.calls_corrected == 1
    assert calls_of(db, user) == [(4000, cost(4000), None, "4930123")]
    assert balance(db, user) == 10000 - cost(4000)
    apply(db, [sip(Status.STOP, T0 + 4100, cid)], T0 + 4101)
    assert balance(db, user) == 10000 - cost(4000)


def test_generic_client_is_still_swept_as_stale(db: Database) -> None:
    user = f"gen-{db.dialect}"
    setup(db, user)
    apply(db, [acct_record(Status.START, T0, user_name=user, acct_session_id=f"g-{db.dialect}",
                           client="gw", called_station_id="4930123")], T0)
    with db.writer.begin() as conn:
        assert sweep_stale(conn, now=T0 + 3000, default_interval_s=300, intervals=3, tz=UTC,
                           calls=RULES, no_interims=("kam",), max_call_duration_s=3600) >= 1


def test_call_over_credit_is_debited_and_an_event(db: Database) -> None:
    user = f"poor-{db.dialect}"
    setup(db, user, balance=1000)            # 0.10
    cid = f"call-p-{db.dialect}"
    apply(db, [sip(Status.START, T0, cid, user, called_station_id="4930123")], T0)
    apply(db, [sip(Status.STOP, T0 + 120, cid)], T0 + 120)
    assert balance(db, user) == 1000 - cost(120)
    assert "call_credit_overrun" in event_kinds(db)


def test_call_past_its_authorised_time_is_closed_and_rated_at_it(db: Database) -> None:
    """The proxy hung up at the Session-Timeout (dialog send_bye) and sent no Stop."""
    user = f"guard-{db.dialect}"
    setup(db, user)
    cid = f"call-g-{db.dialect}"
    apply(db, [sip(Status.START, T0, cid, user, called_station_id="4930123",
                   authorised_s=120)], T0)
    with db.writer.begin() as conn:     # within the 60 s grace: still open
        assert sweep_stale(conn, now=T0 + 170, default_interval_s=300, intervals=3, tz=UTC,
                           calls=RULES, no_interims=("kam",), max_call_duration_s=3600) == 0
    with db.writer.begin() as conn:
        assert sweep_stale(conn, now=T0 + 180, default_interval_s=300, intervals=3, tz=UTC,
                           calls=RULES, no_interims=("kam",), max_call_duration_s=3600) == 1
    assert calls_of(db, user) == [(120, cost(120), None, "4930123")]
    assert balance(db, user) == 10000 - cost(120)
    with db.reader.connect() as conn:
        detail = conn.execute(select(events.c.detail).where(
            events.c.kind == "call_max_duration", events.c.user_name == user)).scalar_one()
    assert "call time authorised" in detail
